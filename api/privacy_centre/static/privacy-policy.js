// The privacy policy: the version in force, its text and controller, and every version
// (`currentPolicy`, `policyHistory`; no sign-in needed). A signed-in customer with a
// material change to accept (`me.pendingPolicy`) sees it first, with a button for
// `acceptPolicy`.
import { ACCEPT_POLICY, PENDING_POLICY, POLICIES } from "./operations.js";
import { PageError, codeMessage, formatDate, gql, has, showAlert, t } from "./centre.js";

function fact(list, key, value) {
  const term = document.createElement("dt");
  term.textContent = t(key);
  const detail = document.createElement("dd");
  detail.textContent = value;
  list.append(term, detail);
}

function historyItem(version) {
  const item = document.createElement("li");
  const title = document.createElement("h3");
  title.textContent = `${t("privacy-policy.history.version")} ${version.version}`;
  const facts = document.createElement("dl");
  fact(facts, "privacy-policy.history.status", t(version.inEffect ? "privacy-policy.in-effect" : "privacy-policy.upcoming"));
  fact(facts, "privacy-policy.history.effective", formatDate(version.effectiveAt));
  fact(facts, "privacy-policy.history.kind", t(version.material ? "privacy-policy.material" : "privacy-policy.minor"));
  if (version.summary) {
    fact(facts, "privacy-policy.history.summary", version.summary);
  }
  item.append(title, facts);
  return item;
}

async function show() {
  const loading = document.getElementById("loading");
  try {
    const { currentPolicy, policyHistory } = await gql(POLICIES);
    loading.remove();
    if (!currentPolicy) {
      document.getElementById("none").hidden = false;
      return;
    }
    document.getElementById("version").textContent = t("privacy-policy.version", {
      version: currentPolicy.version,
      date: formatDate(currentPolicy.effectiveAt),
    });
    document.getElementById("controller-name").textContent = currentPolicy.controller.name;
    document.getElementById("controller-contact").textContent = currentPolicy.controller.contact;
    document.getElementById("controller-dpo").textContent = currentPolicy.controller.dpo;
    document.getElementById("text").textContent = currentPolicy.text;
    document.getElementById("history").replaceChildren(...policyHistory.map(historyItem));
    document.getElementById("policy").hidden = false;
  } catch (error) {
    loading.remove();
    showAlert(document.getElementById("page-error"), error instanceof PageError ? error.key : "error.unexpected");
  }
}

function purposeName(key) {
  return has(`purpose.${key}`) ? t(`purpose.${key}`) : key;
}

async function accept(version, button) {
  const error = document.getElementById("pending-error");
  showAlert(error, null);
  button.disabled = true;
  try {
    const { acceptPolicy } = await gql(ACCEPT_POLICY, { version });
    if (acceptPolicy.__typename === "InputError") {
      showAlert(error, codeMessage(acceptPolicy.code));
      return;
    }
    document.getElementById("pending").hidden = true;
    const accepted = document.getElementById("accepted");
    accepted.textContent = t("privacy-policy.pending.accepted", { version: acceptPolicy.policy.version });
    accepted.focus();
  } catch (failure) {
    showAlert(error, failure instanceof PageError ? failure.key : "error.unexpected");
  } finally {
    button.disabled = false;
  }
}

/** A signed-in reader (the server wrote the sign-out button) with a material change to
 * accept sees it; anyone else sees the page as it is. */
async function showPending() {
  if (document.getElementById("sign-out") === null) {
    return;
  }
  let pending;
  try {
    pending = (await gql(PENDING_POLICY)).me.pendingPolicy;
  } catch (error) {
    if (!(error instanceof PageError && error.key === "error.UNAUTHENTICATED")) {
      showAlert(document.getElementById("page-error"), error instanceof PageError ? error.key : "error.unexpected");
    }
    return;
  }
  if (!pending) {
    return;
  }
  document.getElementById("pending-version").textContent = t("privacy-policy.pending.version", {
    version: pending.version,
    date: formatDate(pending.effectiveAt),
  });
  document.getElementById("pending-summary").textContent = pending.summary;
  if (pending.changedPurposes.length > 0) {
    document.getElementById("pending-purposes-text").textContent = t("privacy-policy.pending.purposes", {
      purposes: pending.changedPurposes.map(purposeName).join(", "),
    });
    document.getElementById("pending-purposes").hidden = false;
  }
  const button = document.getElementById("accept");
  button.addEventListener("click", () => accept(pending.version, button));
  document.getElementById("pending").hidden = false;
}

show();
showPending();
