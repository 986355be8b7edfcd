// The profile: what `me` holds about the signed-in customer, and three forms to change it:
// the phone and the address (`updateProfile`), the password (`changePassword`, which signs
// out the other sessions) and the email address (`updateProfile` with `email` and
// `currentPassword`: the new address is `pendingEmail` until the link mailed to it is
// opened on the verification page, or until the customer cancels it: `cancelEmailChange`).
// The API's typed errors mark the fields they name.
import { CANCEL_EMAIL_CHANGE, CHANGE_PASSWORD, ME, UPDATE_PROFILE } from "./operations.js";
import {
  PageError,
  RefusedFields,
  codeMessage,
  formatDate,
  gql,
  has,
  showAlert,
  signInFirst,
  t,
} from "./centre.js";
import { busy, clearErrors, fieldError, value } from "./forms.js";
import { addressInput, addressLines, fillAddress, nameCountries } from "./address-fields.js";

let me = null;

function text(id, content) {
  document.getElementById(id).textContent = content || "";
}

function isSignInNeeded(error) {
  return error instanceof PageError && error.key === "error.UNAUTHENTICATED";
}

// What `me` holds, in the list at the top and in the pending change's notice.
function showView() {
  text("email", me.email);
  text("email-state", `(${t(me.emailVerified ? "profile.verified" : "profile.unverified")})`);
  const pending = document.getElementById("pending-email");
  const notice = document.getElementById("change-email-pending");
  pending.hidden = !me.pendingEmail;
  notice.hidden = !me.pendingEmail;
  document.getElementById("cancel-email").hidden = !me.pendingEmail;
  pending.textContent = me.pendingEmail ? t("profile.pending", { email: me.pendingEmail }) : "";
  notice.textContent = me.pendingEmail
    ? t("profile.change-email.pending", { email: me.pendingEmail, current: me.email })
    : "";
  text("phone", me.phone);
  const address = document.getElementById("address");
  address.replaceChildren();
  for (const [n, line] of addressLines(me.address).entries()) {
    if (n > 0) {
      address.append(document.createElement("br"));
    }
    address.append(line);
  }
  text("since", formatDate(me.createdAt));
  document.getElementById("password-username").value = me.email;
}

// The phone and address form, as `me` holds them.
function fillContact() {
  const form = document.getElementById("contact-form");
  form.elements.namedItem("phone").value = me.phone || "";
  fillAddress(form, me.address);
}

// Read `me` again and show it; false (and the reason shown) when that failed.
async function refresh() {
  try {
    ({ me } = await gql(ME));
    showView();
    return true;
  } catch (error) {
    if (isSignInNeeded(error)) {
      signInFirst();
      return false;
    }
    showAlert(
      document.getElementById("page-error"),
      error instanceof PageError ? error.key : "error.unexpected",
    );
    return false;
  }
}

// The catalogue key for an error the API gave about `field`.
function fieldMessage(field, code) {
  if (code === "INVALID_CREDENTIALS") {
    return "profile.current-password.wrong";
  }
  if (code === "SAME_EMAIL") {
    return "profile.change-email.same";
  }
  if (code === "WEAK_PASSWORD") {
    return codeMessage(code);
  }
  if (field === "newPassword") {
    return "error.field.password";
  }
  if (code === "REFUSED") {
    return "profile.field.refused";
  }
  if (field === "currentPassword") {
    return "profile.current-password.missing";
  }
  const key = `error.field.${field}`;
  return has(key) ? key : "error.VALIDATION";
}

// The fields a typed answer is about: an InputError's, or the current password for
// InvalidCredentials; none for a success.
function problems(answer) {
  if (answer.__typename === "InputError") {
    return answer.fields.length > 0 ? answer.fields : [{ field: answer.field, code: answer.code }];
  }
  if (answer.__typename === "InvalidCredentials") {
    return [{ field: "currentPassword", code: answer.code }];
  }
  return [];
}

// Send form `prefix`-form with `submit`, which answers { problems } (field, code pairs the
// API named) or { done } (the catalogue key and parameters of the success message, after
// the view was read again). Field errors are marked and the first field takes the focus;
// anything else is said in the form's alert, which takes it; a success is said in the
// form's status message, which takes it. `ids` maps the API's field names to the form's.
function handle(prefix, ids, submit) {
  const form = document.getElementById(`${prefix}-form`);
  const alert = document.getElementById(`${prefix}-alert`);
  const done = document.getElementById(`${prefix}-done`);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, async () => {
      clearErrors(form);
      showAlert(alert, null);
      done.hidden = true;
      let outcome;
      try {
        outcome = await submit(form);
      } catch (error) {
        if (error instanceof RefusedFields) {
          outcome = { problems: error.fields };
        } else if (isSignInNeeded(error)) {
          signInFirst();
          return;
        } else {
          showAlert(alert, error instanceof PageError ? error.key : "error.unexpected");
          alert.focus();
          return;
        }
      }
      if (outcome.problems) {
        let first = null;
        for (const { field, code } of outcome.problems) {
          const id = ids(field);
          if (id && fieldError(form, id, t(fieldMessage(field, code))) && first === null) {
            first = id;
          }
        }
        showAlert(alert, first === null ? "error.VALIDATION" : "form.check");
        (first === null ? alert : document.getElementById(first)).focus();
        return;
      }
      done.textContent = t(...outcome.done);
      done.hidden = false;
      done.focus();
    });
  });
}

handle(
  "contact",
  (field) => (field === "phone" || field.startsWith("address.") ? `contact-${field}` : null),
  async (form) => {
    const input = { phone: value(form, "phone"), address: addressInput(form) };
    const answer = (await gql(UPDATE_PROFILE, { input })).updateProfile;
    const found = problems(answer);
    if (found.length > 0) {
      return { problems: found };
    }
    if (await refresh()) {
      fillContact();
    }
    return { done: ["profile.contact.done"] };
  },
);

handle(
  "password",
  (field) => ({ currentPassword: "password-current", newPassword: "password-new" })[field],
  async (form) => {
    const answer = (
      await gql(CHANGE_PASSWORD, {
        currentPassword: form.elements.namedItem("currentPassword").value,
        newPassword: form.elements.namedItem("newPassword").value,
      })
    ).changePassword;
    const found = problems(answer);
    if (found.length > 0) {
      return { problems: found };
    }
    form.reset();
    await refresh(); // a pending change of the email address ended with the old password
    return { done: ["profile.password.done", { count: String(answer.otherSessionsRevoked) }] };
  },
);

handle(
  "change-email",
  (field) => ({ email: "change-email-new", currentPassword: "change-email-password" })[field],
  async (form) => {
    const email = value(form, "email");
    if (email.toLowerCase() === me.email.toLowerCase()) {
      return { problems: [{ field: "email", code: "SAME_EMAIL" }] };
    }
    const input = { email, currentPassword: form.elements.namedItem("currentPassword").value };
    const answer = (await gql(UPDATE_PROFILE, { input })).updateProfile;
    const found = problems(answer);
    if (found.length > 0) {
      return { problems: found };
    }
    if (!answer.emailChangePending) {
      return { problems: [{ field: "email", code: "SAME_EMAIL" }] };
    }
    form.reset();
    await refresh();
    return { done: ["profile.change-email.sent", { email: me.pendingEmail || email }] };
  },
);

handle(
  "cancel-email",
  () => null,
  async () => {
    const answer = (await gql(CANCEL_EMAIL_CHANGE)).cancelEmailChange;
    document.getElementById("change-email-done").hidden = true;
    await refresh();
    const key = answer.cancelled ? "profile.change-email.cancelled" : "profile.change-email.none";
    return { done: [key, { email: me.email }] };
  },
);

async function show() {
  const loading = document.getElementById("loading");
  nameCountries(document.getElementById("contact-address.country"));
  const shown = await refresh();
  loading.remove();
  if (shown) {
    fillContact();
    document.getElementById("profile").hidden = false;
    document.getElementById("editing").hidden = false;
  }
}

show();
