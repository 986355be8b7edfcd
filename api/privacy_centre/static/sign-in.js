// Sign in: `login` sets the session cookie; then on to the page asked for, or the profile.
import { LOGIN } from "./operations.js";
import { PageError, codeMessage, gql, pageUrl, showAlert } from "./centre.js";
import { busy, value } from "./forms.js";

const AFTER = new Set(["profile", "privacy-policy"]);
const params = new URLSearchParams(window.location.search);
const form = document.getElementById("sign-in-form");
const alert = document.getElementById("form-error");

if (params.get("signed-out") === "1") {
  document.getElementById("signed-out").hidden = false;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  busy(form, async () => {
    showAlert(alert, null);
    try {
      const data = await gql(LOGIN, {
        email: value(form, "email"),
        password: form.elements.namedItem("password").value,
      });
      if (data.login.__typename !== "LoginSuccess") {
        showAlert(alert, codeMessage(data.login.code));
        return;
      }
      const next = params.get("next");
      window.location.assign(pageUrl(AFTER.has(next) ? next : "profile"));
    } catch (error) {
      showAlert(alert, error instanceof PageError ? error.key : "error.unexpected");
    }
  });
});
