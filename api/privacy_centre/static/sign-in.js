// Sign in: `login` sets the session cookie; then on to the page asked for, or the profile.
// An account whose address is not confirmed yet is signed in too: the page says so first,
// and offers to send the confirmation mail again (`resendVerificationEmail`).
import { RESEND_VERIFICATION_EMAIL, SIGN_IN } from "./operations.js";
import { PageError, codeMessage, gql, lang, pageUrl, showAlert, t } from "./centre.js";
import { busy, value } from "./forms.js";

// The pages a reader may be sent back to after signing in (`?next=`): ours only.
const AFTER = new Set(["profile", "consents", "rights", "access-log", "privacy-policy"]);
const params = new URLSearchParams(window.location.search);
const form = document.getElementById("sign-in-form");
const alert = document.getElementById("form-error");
const next = pageUrl(AFTER.has(params.get("next")) ? params.get("next") : "profile");

if (params.get("signed-out") === "1") {
  document.getElementById("signed-out").hidden = false;
}

/** Signed in with an address still to confirm: say so, with the offer to mail again. */
function unconfirmed(email) {
  document.getElementById("signed-out").hidden = true;
  document.getElementById("sign-in").hidden = true;
  document.getElementById("continue").href = next;
  const section = document.getElementById("unconfirmed");
  section.hidden = false;
  document.getElementById("unconfirmed-title").focus();
  const button = document.getElementById("resend");
  const resent = document.getElementById("resent");
  const failed = document.getElementById("resend-error");
  button.addEventListener("click", async () => {
    button.disabled = true;
    showAlert(failed, null);
    try {
      const data = await gql(RESEND_VERIFICATION_EMAIL, { email });
      const answer = data.resendVerificationEmail;
      if (answer.__typename !== "VerificationResent") {
        throw new PageError("error.unexpected");
      }
      resent.textContent = t("sign-in.resent", {
        hours: new Intl.NumberFormat(lang).format(answer.linkValidHours),
      });
      button.hidden = true;
      resent.focus();
    } catch (error) {
      showAlert(failed, error instanceof PageError ? error.key : "error.unexpected");
      button.disabled = false;
    }
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  busy(form, async () => {
    showAlert(alert, null);
    try {
      const email = value(form, "email");
      const data = await gql(SIGN_IN, {
        email,
        password: form.elements.namedItem("password").value,
      });
      if (data.login.__typename !== "LoginSuccess") {
        showAlert(alert, codeMessage(data.login.code));
        return;
      }
      if (!data.login.customer.emailVerified) {
        unconfirmed(email);
        return;
      }
      window.location.assign(next);
    } catch (error) {
      showAlert(alert, error instanceof PageError ? error.key : "error.unexpected");
    }
  });
});
