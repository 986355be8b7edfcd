// Forms: the values of a form's named fields, and errors shown beside the fields they
// are about (aria-invalid, the message in the field's described-by element).

/** Clear every field error of `form`. */
export function clearErrors(form) {
  for (const element of form.querySelectorAll("[aria-invalid]")) {
    element.removeAttribute("aria-invalid");
  }
  for (const element of form.querySelectorAll(".field-error")) {
    element.textContent = "";
  }
}

/** Mark field `name` as wrong, with `message`; whether the form has such a field. */
export function fieldError(form, name, message) {
  const note = document.getElementById(`${name}-error`);
  if (note === null) {
    return false;
  }
  note.textContent = message;
  const input = document.getElementById(name);
  if (input !== null && input.tagName !== "FIELDSET") {
    input.setAttribute("aria-invalid", "true");
  }
  return true;
}

/** Mark field `name` with `message` and move the focus there, so that it is read;
 * `invalid` false for a note that is not about the value (too many attempts). */
export function noteField(form, name, message, invalid = true) {
  fieldError(form, name, message);
  const input = document.getElementById(name);
  if (!invalid) {
    input.removeAttribute("aria-invalid");
  }
  input.focus();
}

/** The trimmed value of field `name`. */
export function value(form, name) {
  return form.elements.namedItem(name).value.trim();
}

/** Run `work` with the form's submit button disabled. */
export async function busy(form, work) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await work();
  } finally {
    button.disabled = false;
  }
}
