// The rights page: the customer's requests, newest first (`me.rightsRequests`), each with
// what can be done with it now: the mailed code (`verifyRightsRequest`), a new code
// (`resendRightsRequestCode`), withdrawal (`cancelRightsRequest`); and the form that makes
// a new one (rights-form.js).
import {
  CANCEL_RIGHTS_REQUEST,
  MY_RIGHTS_REQUESTS,
  RESEND_RIGHTS_REQUEST_CODE,
  VERIFY_RIGHTS_REQUEST,
} from "./operations.js";
import { PageError, codeMessage, formatDate, gql, showAlert, signInFirst, t } from "./centre.js";
import { busy, clearErrors, fieldError } from "./forms.js";
import { setUpForm } from "./rights-form.js";
import { requestItem } from "./rights-items.js";

const list = document.getElementById("requests");
const notice = document.getElementById("notice");
const pageError = document.getElementById("page-error");
const CODE_FIELD = new Set(["INVALID_CODE", "CODE_EXPIRED", "CODE_LOCKED", "VALIDATION"]);

function problemKey(error) {
  return error instanceof PageError ? error.key : "error.unexpected";
}

function failed(error) {
  if (error instanceof PageError && error.key === "error.UNAUTHENTICATED") {
    signInFirst();
    return true;
  }
  return false;
}

function say(text) {
  notice.textContent = text;
}

/** Fetch and show the requests; then focus `focusId`'s code field or heading, if given. */
async function load(focusId = null) {
  const loading = document.getElementById("loading");
  try {
    const { me } = await gql(MY_RIGHTS_REQUESTS);
    const requests = me.rightsRequests;
    list.replaceChildren(...requests.map(requestItem));
    document.getElementById("none").hidden = requests.length > 0;
    loading.hidden = true;
    showAlert(pageError, null);
  } catch (error) {
    if (failed(error)) {
      return;
    }
    loading.hidden = true;
    showAlert(pageError, problemKey(error));
    return;
  }
  if (focusId !== null) {
    const item = document.getElementById(`request-${focusId}`);
    const target = document.getElementById(`code-${focusId}`) || (item && item.querySelector("h3"));
    if (target) {
      target.focus();
    }
  }
}

function requestAlert(id, key) {
  showAlert(document.getElementById(`alert-${id}`), key);
}

async function verify(form) {
  const id = form.dataset.request;
  const field = `code-${id}`;
  const code = form.elements.namedItem("code").value.trim();
  clearErrors(form);
  requestAlert(id, null);
  if (!code) {
    fieldError(form, field, t("rights.code.empty"));
    form.elements.namedItem("code").focus();
    return;
  }
  try {
    const { verifyRightsRequest: answer } = await gql(VERIFY_RIGHTS_REQUEST, { id, code });
    if (answer.__typename === "RightsError") {
      const message =
        answer.code === "INVALID_CODE" && answer.attemptsLeft !== null
          ? t("rights.code.wrong", { left: String(answer.attemptsLeft) })
          : t(codeMessage(answer.code));
      if (CODE_FIELD.has(answer.code)) {
        fieldError(form, field, message);
        form.elements.namedItem("code").focus();
      } else {
        requestAlert(id, codeMessage(answer.code));
      }
      return;
    }
    say(t("rights.verified", { date: formatDate(answer.dueAt) }));
    await load(id);
  } catch (error) {
    if (failed(error)) {
      return;
    }
    if (error instanceof PageError && error.field) {
      fieldError(form, field, t("rights.code.empty"));
      form.elements.namedItem("code").focus();
      return;
    }
    requestAlert(id, problemKey(error));
  }
}

async function resend(button) {
  const id = button.dataset.request;
  requestAlert(id, null);
  button.disabled = true;
  try {
    const { resendRightsRequestCode: refused } = await gql(RESEND_RIGHTS_REQUEST_CODE, { id });
    if (refused) {
      requestAlert(id, codeMessage(refused.code));
      return;
    }
    say(t("rights.resent"));
    document.getElementById(`code-${id}`).focus();
  } catch (error) {
    if (!failed(error)) {
      requestAlert(id, problemKey(error));
    }
  } finally {
    button.disabled = false;
  }
}

async function cancel(button) {
  const id = button.dataset.request;
  requestAlert(id, null);
  button.disabled = true;
  try {
    const { cancelRightsRequest: answer } = await gql(CANCEL_RIGHTS_REQUEST, { id });
    if (answer.__typename === "RightsError") {
      requestAlert(id, codeMessage(answer.code));
      button.disabled = false;
      return;
    }
    say(t("rights.cancelled"));
    await load(id);
  } catch (error) {
    button.disabled = false;
    if (!failed(error)) {
      requestAlert(id, problemKey(error));
    }
  }
}

list.addEventListener("submit", (event) => {
  const form = event.target.closest(".code-form");
  if (form) {
    event.preventDefault();
    busy(form, () => verify(form));
  }
});

list.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button === null) {
    return;
  }
  if (button.dataset.action === "resend") {
    resend(button);
  } else if (button.dataset.action === "cancel") {
    cancel(button);
  }
});

setUpForm(async (id) => {
  say(t("rights.submitted"));
  await load(id);
});
load();
