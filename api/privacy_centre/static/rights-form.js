// The form that makes a request (`submitRightsRequest`): access, rectification (the new
// phone number and/or address, as the API's RectificationInput) or erasure (after its
// warning, confirmed with a checkbox). A refusal that names a field marks that field.
import { SUBMIT_RIGHTS_REQUEST } from "./operations.js";
import { PageError, codeMessage, gql, has, showAlert, t } from "./centre.js";
import { addressInput, nameCountries } from "./address-fields.js";
import { busy, clearErrors, fieldError, value } from "./forms.js";

const form = document.getElementById("request-form");
const alert = document.getElementById("form-error");
const changes = document.getElementById("changes");
const erasure = document.getElementById("erasure");
const ADDRESS = ["address.line1", "address.line2", "address.city", "address.postalCode", "address.country"];

/** The country select named in the reader's language, its empty choice first. */
function countries() {
  const select = document.getElementById("address.country");
  nameCountries(select);
  const none = document.createElement("option");
  none.value = "";
  none.textContent = t("rights.changes.country.none");
  select.prepend(none);
  select.value = "";
}

function kind() {
  const checked = form.querySelector("input[name=kind]:checked");
  return checked ? checked.value : null;
}

function showKind() {
  changes.hidden = kind() !== "RECTIFICATION";
  erasure.hidden = kind() !== "ERASURE";
}

function proposed() {
  const result = {};
  const phone = value(form, "phone");
  if (phone) {
    result.phone = phone;
  }
  if (ADDRESS.some((name) => value(form, name))) {
    result.address = addressInput(form);
  }
  return result;
}

/** The form's field for an argument the API names (`changes.address.city` -> address.city). */
function fieldOf(argument) {
  const name = argument.startsWith("changes.") ? argument.slice("changes.".length) : argument;
  return document.getElementById(name) ? name : "changes";
}

function fieldMessage(name) {
  if (name === "changes" || name === "details") {
    return t(`rights.error.${name}`);
  }
  const key = `error.field.${name}`;
  return t(has(key) ? key : "error.VALIDATION");
}

function markField(name, message) {
  fieldError(form, name, message);
  showAlert(alert, "form.check");
  const target = document.getElementById(name);
  if (target && target.tagName !== "FIELDSET") {
    target.focus();
  }
}

/** What the form lacks before anything is sent, or null. */
function missing() {
  if (kind() === null) {
    return ["kind", t("rights.error.kind")];
  }
  if (kind() === "ERASURE" && !document.getElementById("erasure-confirm").checked) {
    return ["erasure-confirm", t("rights.error.erasure-confirm")];
  }
  if (kind() === "RECTIFICATION" && Object.keys(proposed()).length === 0) {
    return ["changes", t("rights.error.changes")];
  }
  return null;
}

/** Set up the form; `onSubmitted(id)` runs once a request is recorded. */
export function setUpForm(onSubmitted) {
  countries();
  for (const radio of form.querySelectorAll("input[name=kind]")) {
    radio.addEventListener("change", showKind);
  }
  showKind();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, async () => {
      clearErrors(form);
      showAlert(alert, null);
      const lacking = missing();
      if (lacking !== null) {
        markField(...lacking);
        return;
      }
      const variables = {
        kind: kind(),
        details: value(form, "details"),
        changes: kind() === "RECTIFICATION" ? proposed() : null,
      };
      try {
        const { submitRightsRequest: answer } = await gql(SUBMIT_RIGHTS_REQUEST, variables);
        if (answer.__typename === "RightsError") {
          if (answer.field) {
            markField(fieldOf(answer.field), fieldMessage(fieldOf(answer.field)));
          } else {
            showAlert(alert, codeMessage(answer.code));
          }
          return;
        }
        if (answer.alreadyOpen) {
          // one request per kind: the open one is in the list above, nothing was mailed
          showAlert(alert, "error.DUPLICATE_REQUEST");
          return;
        }
        form.reset();
        document.getElementById("address.country").value = "";
        showKind();
        await onSubmitted(answer.id);
      } catch (error) {
        if (error instanceof PageError && error.field) {
          markField(fieldOf(error.field), fieldMessage(fieldOf(error.field)));
          return;
        }
        showAlert(alert, error instanceof PageError ? error.key : "error.unexpected");
      }
    });
  });
}
