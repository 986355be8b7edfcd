// Where the reset mail's link lands. The token leaves the address bar at once
// (history.replaceState: not kept in the history, nor in a screenshot), stays in this
// tab's sessionStorage (so a reload or the language links keep working) and goes nowhere
// but the body of `resetPassword`. The page's response carries `Referrer-Policy:
// no-referrer`, so its style sheets and modules were fetched without it too.
import { RESET_PASSWORD } from "./operations.js";
import { PageError, codeMessage, gql, showAlert, t } from "./centre.js";
import { busy, clearErrors, fieldError } from "./forms.js";

const KEPT = "custos.reset-token";
const form = document.getElementById("reset-password-form");
const alert = document.getElementById("form-error");
const choose = document.getElementById("choose");
const badLink = document.getElementById("bad-link-text");

/** The token of the link: from the address (then removed from it, and from the page's
 * own links, which carry the query into the language choice), else kept by this tab. */
function takeToken() {
  const url = new URL(window.location.href);
  const fromLink = url.searchParams.get("token");
  if (fromLink) {
    sessionStorage.setItem(KEPT, fromLink);
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  for (const link of document.querySelectorAll("a[href*='token=']")) {
    const target = new URL(link.href);
    target.searchParams.delete("token");
    link.href = target.href;
  }
  return fromLink || sessionStorage.getItem(KEPT);
}

const token = takeToken();

/** The link cannot be used (`key` says why): say so, and offer to ask for another. */
function refuse(key) {
  sessionStorage.removeItem(KEPT);
  choose.hidden = true;
  badLink.textContent = t(key);
  document.getElementById("ask-again").hidden = false;
}

const TOKEN_MESSAGES = {
  INVALID_TOKEN: "reset-password.invalid",
  TOKEN_EXPIRED: "error.TOKEN_EXPIRED",
};

/** The message for an InputError's code on the new password. */
function passwordMessage(code) {
  return code === "WEAK_PASSWORD" ? codeMessage(code) : "error.field.password";
}

function onPassword(key, invalid = true) {
  fieldError(form, "newPassword", t(key));
  const input = document.getElementById("newPassword");
  if (!invalid) {
    input.removeAttribute("aria-invalid");
  }
  input.focus();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  busy(form, async () => {
    clearErrors(form);
    showAlert(alert, null);
    const newPassword = form.elements.namedItem("newPassword").value;
    if (newPassword !== form.elements.namedItem("confirmPassword").value) {
      fieldError(form, "confirmPassword", t("reset-password.mismatch"));
      document.getElementById("confirmPassword").focus();
      return;
    }
    try {
      const data = await gql(RESET_PASSWORD, { token, newPassword });
      const answer = data.resetPassword;
      if (answer.__typename === "TokenError") {
        refuse(TOKEN_MESSAGES[answer.code] || codeMessage(answer.code));
        return;
      }
      if (answer.__typename === "InputError") {
        const fields = answer.fields.length > 0 ? answer.fields : [answer];
        const problem = fields.find((f) => f.field === "newPassword") || fields[0];
        onPassword(passwordMessage(problem.code));
        return;
      }
      sessionStorage.removeItem(KEPT);
      form.reset();
      choose.hidden = true;
      document.getElementById("done").hidden = false;
      document.getElementById("done-title").focus();
    } catch (error) {
      if (error instanceof PageError && error.key === "error.RATE_LIMITED") {
        onPassword(error.key, false);
        return;
      }
      showAlert(alert, error instanceof PageError ? error.key : "error.unexpected");
    }
  });
});

if (token) {
  choose.hidden = false;
} else {
  refuse("reset-password.missing");
}
