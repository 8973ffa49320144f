// Texts for the scripts come from the page: a JSON block rendered in the reader's language.
const block = document.getElementById("vc-strings");
const strings = block ? JSON.parse(block.textContent) : {};

/** The translated text for `key`, with {name} placeholders filled from `values`. */
export function t(key, values = {}) {
  const text = strings[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

export function pageData(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : {};
}
