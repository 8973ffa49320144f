// "Copy link" next to each issued link: the whole link, code included, in one click. The buttons
// are hidden until this script runs, so a page without scripts shows no button that does nothing.
import { $ } from "../dom.js";

for (const button of document.querySelectorAll("[data-copy]")) {
  const field = document.getElementById(button.dataset.copy);
  const label = button.textContent;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
    } catch {
      field.select(); // no clipboard access (an old browser, or not allowed): selected for Ctrl+C
      return;
    }
    button.textContent = button.dataset.copied;
    setTimeout(() => { button.textContent = label; }, 2000);
  });
}

// The link fields show their whole content when focused, however narrow the column.
$(".vc-issued")?.addEventListener("focusin", (event) => {
  if (event.target.matches(".vc-copy")) event.target.select();
});
