"""Domain: what a consultation is and its rules. No Flask globals; collaborators come through constructors."""
