// The privacy policy: the version in force, its text and controller, and every version
// (`currentPolicy`, `policyHistory`; no sign-in needed).
import { POLICIES } from "./operations.js";
import { PageError, formatDate, gql, showAlert, t } from "./centre.js";

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

show();
