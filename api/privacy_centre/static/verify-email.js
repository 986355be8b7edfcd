// Where the verification mail's link lands: the token from the address goes to
// `verifyEmail`; the page says whether the address is now confirmed, or why not. A link
// that is missing, used or expired comes with the offer to send the mail again
// (`resendVerificationEmail`: the same answer for every address).
import { RESEND_VERIFICATION_EMAIL, VERIFY_EMAIL } from "./operations.js";
import { PageError, codeMessage, gql, lang, showAlert, t } from "./centre.js";
import { busy, clearErrors, noteField, value } from "./forms.js";

const outcome = document.getElementById("outcome");
const token = new URLSearchParams(window.location.search).get("token");
const RESEND_AFTER = new Set(["INVALID_TOKEN", "TOKEN_EXPIRED"]);

function say(key, kind) {
  const paragraph = document.createElement("p");
  paragraph.className = kind;
  paragraph.textContent = t(key);
  outcome.replaceChildren(paragraph);
}

function offerResend() {
  document.getElementById("resend").hidden = false;
}

async function verify() {
  if (!token) {
    say("verify-email.missing", "alert");
    offerResend();
    return;
  }
  try {
    const data = await gql(VERIFY_EMAIL, { token });
    if (data.verifyEmail.__typename === "EmailVerified") {
      say("verify-email.done", "success");
    } else {
      say(codeMessage(data.verifyEmail.code), "alert");
      if (RESEND_AFTER.has(data.verifyEmail.code)) {
        offerResend();
      }
    }
  } catch (error) {
    say(error instanceof PageError ? error.key : "error.unexpected", "alert");
  }
  document.getElementById("next").hidden = false;
}

const form = document.getElementById("resend-form");
const alert = document.getElementById("form-error");

form.addEventListener("submit", (event) => {
  event.preventDefault();
  busy(form, async () => {
    clearErrors(form);
    showAlert(alert, null);
    try {
      const data = await gql(RESEND_VERIFICATION_EMAIL, { email: value(form, "email") });
      const answer = data.resendVerificationEmail;
      if (answer.__typename === "InputError") {
        noteField(form, "email", t("error.field.email"));
        return;
      }
      const resent = document.getElementById("resent");
      resent.textContent = t("verify-email.resent", {
        hours: new Intl.NumberFormat(lang).format(answer.linkValidHours),
      });
      document.getElementById("resend-ask").hidden = true;
      resent.focus();
    } catch (error) {
      if (error instanceof PageError && error.key === "error.RATE_LIMITED") {
        noteField(form, "email", t(error.key), false);
        return;
      }
      showAlert(alert, error instanceof PageError ? error.key : "error.unexpected");
    }
  });
});

verify();
