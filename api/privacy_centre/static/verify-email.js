// Where the verification mail's link lands: the token from the address goes to
// `verifyEmail`; the page says whether the address is now confirmed, or why not.
import { VERIFY_EMAIL } from "./operations.js";
import { PageError, codeMessage, gql, t } from "./centre.js";

const outcome = document.getElementById("outcome");
const token = new URLSearchParams(window.location.search).get("token");

function say(key, kind) {
  const paragraph = document.createElement("p");
  paragraph.className = kind;
  paragraph.textContent = t(key);
  outcome.replaceChildren(paragraph);
}

async function verify() {
  if (!token) {
    say("verify-email.missing", "alert");
    return;
  }
  try {
    const data = await gql(VERIFY_EMAIL, { token });
    if (data.verifyEmail.__typename === "EmailVerified") {
      say("verify-email.done", "success");
    } else {
      say(codeMessage(data.verifyEmail.code), "alert");
    }
  } catch (error) {
    say(error instanceof PageError ? error.key : "error.unexpected", "alert");
  }
  document.getElementById("next").hidden = false;
}

verify();
