// Create an account: `purposes` lists what consent is asked for (one checkbox each, off
// until ticked); `register` sends the form; its typed InputError marks the fields.
import { PURPOSES, REGISTER } from "./operations.js";
import { PageError, codeMessage, gql, has, showAlert, t } from "./centre.js";
import { busy, clearErrors, fieldError, value } from "./forms.js";
import { addressInput, nameCountries } from "./address-fields.js";

const form = document.getElementById("sign-up-form");
const alert = document.getElementById("form-error");
const choices = document.getElementById("consent-choices");

async function listPurposes() {
  try {
    const data = await gql(PURPOSES);
    for (const purpose of data.purposes.filter((p) => p.consentRequired)) {
      const id = `consent-${purpose.key}`;
      const item = document.createElement("li");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.id = id;
      box.name = "consent";
      box.value = purpose.key;
      const label = document.createElement("label");
      label.htmlFor = id;
      const key = `purpose.${purpose.key}`;
      label.textContent = has(key) ? t(key) : purpose.key;
      const description = document.createElement("span");
      description.className = "description";
      description.textContent = has(`${key}.description`)
        ? t(`${key}.description`)
        : purpose.description;
      label.append(description);
      item.append(box, label);
      choices.append(item);
    }
    document.getElementById("consents-loading").remove();
  } catch (error) {
    document.getElementById("consents-loading").textContent = t(
      error instanceof PageError ? error.key : "error.unexpected",
    );
  }
}

function input() {
  const consents = [...form.querySelectorAll("input[name=consent]")].map((box) => ({
    purpose: box.value,
    granted: box.checked,
  }));
  return {
    email: value(form, "email"),
    password: form.elements.namedItem("password").value,
    phone: value(form, "phone"),
    address: addressInput(form),
    consents,
  };
}

function showInputError(error) {
  const fields = error.fields.length > 0 ? error.fields : [{ field: error.field, code: error.code }];
  let first = null;
  for (const { field, code } of fields) {
    const name = field.startsWith("consents") ? "consents" : field;
    const key = code === "WEAK_PASSWORD" ? codeMessage(code) : `error.field.${name}`;
    if (fieldError(form, name, t(has(key) ? key : "error.VALIDATION")) && first === null) {
      first = name;
    }
  }
  showAlert(alert, "form.check");
  const target = first && document.getElementById(first);
  if (target && target.tagName !== "FIELDSET") {
    target.focus();
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  busy(form, async () => {
    clearErrors(form);
    showAlert(alert, null);
    try {
      const data = await gql(REGISTER, { input: input() });
      if (data.register.__typename === "InputError") {
        showInputError(data.register);
        return;
      }
      document.getElementById("sign-up").hidden = true;
      const accepted = document.getElementById("accepted");
      accepted.hidden = false;
      document.getElementById("accepted-title").focus();
    } catch (error) {
      showAlert(alert, error instanceof PageError ? error.key : "error.unexpected");
    }
  });
});

nameCountries(document.getElementById("address.country"));
listPurposes();
