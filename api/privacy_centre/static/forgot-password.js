// A forgotten password: `requestPasswordReset` mails a link to the address if an account
// uses it. The answer is the same for every address, and so is what the page says.
import { REQUEST_PASSWORD_RESET } from "./operations.js";
import { PageError, gql, lang, showAlert, t } from "./centre.js";
import { busy, clearErrors, noteField, value } from "./forms.js";

const form = document.getElementById("forgot-password-form");
const alert = document.getElementById("form-error");
const ask = document.getElementById("ask");
const sent = document.getElementById("sent");
const email = document.getElementById("email");

form.addEventListener("submit", (event) => {
  event.preventDefault();
  busy(form, async () => {
    clearErrors(form);
    showAlert(alert, null);
    try {
      const data = await gql(REQUEST_PASSWORD_RESET, { email: value(form, "email") });
      const answer = data.requestPasswordReset;
      if (answer.__typename === "InputError") {
        noteField(form, "email", t("error.field.email"));
        return;
      }
      document.getElementById("sent-text").textContent = t("forgot-password.sent", {
        minutes: new Intl.NumberFormat(lang).format(answer.linkValidMinutes),
      });
      ask.hidden = true;
      sent.hidden = false;
      document.getElementById("sent-title").focus();
    } catch (error) {
      if (error instanceof PageError && error.key === "error.RATE_LIMITED") {
        noteField(form, "email", t(error.key), false);
        return;
      }
      showAlert(alert, error instanceof PageError ? error.key : "error.unexpected");
    }
  });
});

document.getElementById("again").addEventListener("click", () => {
  sent.hidden = true;
  ask.hidden = false;
  email.focus();
});
