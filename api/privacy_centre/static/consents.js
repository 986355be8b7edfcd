// The consents page (the preference centre): every purpose (`purposes`) with its legal
// basis; a switch for each one that needs consent, bound to `me.consents` and changed with
// `setConsent`; the Global Privacy Control opt-out when the history records one; and the
// history of changes (`me.consentHistory`), newest first.
import { CONSENT_HISTORY, MY_CONSENTS, SET_CONSENT } from "./operations.js";
import { PageError, codeMessage, formatDate, gql, has, showAlert, signInFirst, t } from "./centre.js";

const ADS = "marketing.ads";
const GPC = "gpc";
const alert = document.getElementById("page-error");
const status = document.getElementById("status");
const switches = new Map();
let descriptions = new Map();
let history = [];

// A purpose's name: the catalogue's (common or this page's), else the API's words.
function purposeName(key) {
  for (const name of [`purpose.${key}`, `consents.purpose.${key}`]) {
    if (has(name)) {
      return t(name);
    }
  }
  return descriptions.get(key) || key;
}

// A purpose's description: the catalogue's only (when the name is the API's own
// description, it already says it).
function purposeDescription(key) {
  const name = `purpose.${key}.description`;
  return has(name) ? t(name) : "";
}

function basisText(basis) {
  const key = `consents.basis.${basis}`;
  return t("consents.basis", { basis: has(key) ? t(key) : t("consents.basis.other", { basis }) });
}

function sourceText(source) {
  const key = `consents.source.${source}`;
  return has(key) ? t(key) : t("consents.source.other", { source });
}

function safeId(key) {
  return key.replace(/[^A-Za-z0-9_-]/g, "-");
}

function stateText(consent) {
  switch (consent.state) {
    case "GRANTED":
      return t("consents.state.granted", { date: formatDate(consent.at, true), source: sourceText(consent.source) });
    case "WITHDRAWN":
      return t("consents.state.withdrawn", { date: formatDate(consent.at, true), source: sourceText(consent.source) });
    case "ASK_AGAIN":
      return t("consents.state.ask-again");
    default:
      return t("consents.state.not-asked");
  }
}

function paragraph(className, text, id = null) {
  const element = document.createElement("p");
  element.className = className;
  element.textContent = text;
  if (id) {
    element.id = id;
  }
  return element;
}

/** Put a switch (and the line under it) in the state of `consent`. */
function showConsent(consent) {
  const entry = switches.get(consent.purpose);
  if (!entry) {
    return;
  }
  entry.button.setAttribute("aria-checked", consent.granted ? "true" : "false");
  entry.label.textContent = t(consent.granted ? "consents.switch.on" : "consents.switch.off");
  entry.state.textContent = stateText(consent);
}

function purposeItem(purpose, consent) {
  const id = safeId(purpose.key);
  const item = document.createElement("li");
  const head = document.createElement("div");
  head.className = "purpose-head";
  const title = document.createElement("h3");
  title.id = `name-${id}`;
  title.textContent = purposeName(purpose.key);
  head.append(title);
  item.append(head);
  const described = [];
  const description = purposeDescription(purpose.key);
  if (description) {
    item.append(paragraph("description", description, `description-${id}`));
    described.push(`description-${id}`);
  }
  item.append(paragraph("basis", basisText(purpose.legalBasis), `basis-${id}`));
  described.push(`basis-${id}`);
  if (!purpose.consentRequired) {
    return item;
  }
  const state = paragraph("state", "", `state-${id}`);
  item.append(state);
  described.push(`state-${id}`);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "switch";
  button.id = `switch-${id}`;
  button.setAttribute("role", "switch");
  button.setAttribute("aria-labelledby", title.id);
  button.setAttribute("aria-describedby", described.join(" "));
  const label = document.createElement("span");
  label.className = "switch-label";
  button.append(label);
  head.append(button);
  switches.set(purpose.key, { button, label, state });
  button.addEventListener("click", () => change(purpose.key, button));
  showConsent(consent || { purpose: purpose.key, granted: false, state: "NOT_ASKED" });
  return item;
}

function historyItem(event) {
  const item = document.createElement("li");
  const title = document.createElement("h3");
  const name = purposeName(event.purpose);
  title.textContent = t(event.granted ? "consents.history.given" : "consents.history.withdrawn", { purpose: name });
  const facts = document.createElement("dl");
  const rows = [
    ["consents.history.when", formatDate(event.at, true)],
    ["consents.history.source", sourceText(event.source)],
    [
      "consents.history.policy",
      event.policyVersion
        ? t("consents.history.policy-version", { version: event.policyVersion })
        : t("consents.history.no-policy"),
    ],
  ];
  for (const [key, value] of rows) {
    const term = document.createElement("dt");
    term.textContent = t(key);
    const detail = document.createElement("dd");
    detail.textContent = value;
    facts.append(term, detail);
  }
  item.append(title, facts);
  return item;
}

function newestFirst(events) {
  return [...events].sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
}

/** The latest record with source `gpc` for personalised advertising, if any. */
function gpcRecord() {
  return history.find((event) => event.purpose === ADS && event.source === GPC) || null;
}

/** The Global Privacy Control notice: shown when the history records the signal. */
function showGpc() {
  const record = gpcRecord();
  const notice = document.getElementById("gpc");
  notice.hidden = record === null;
  if (record === null) {
    return;
  }
  document.getElementById("gpc-honoured").textContent = t("consents.gpc.honoured", {
    date: formatDate(record.at, true),
  });
  const latest = history.find((event) => event.purpose === ADS);
  document.getElementById("gpc-regranted").hidden = !(latest && latest.granted && latest !== record);
  // What the browser says of itself (explanation only: the server decides from the header).
  document.getElementById("gpc-sending").hidden = navigator.globalPrivacyControl !== true;
}

function showHistory(events) {
  history = newestFirst(events);
  document.getElementById("history").replaceChildren(...history.map(historyItem));
  document.getElementById("history-empty").hidden = history.length > 0;
  showGpc();
}

function failed(error) {
  if (error instanceof PageError && error.key === "error.UNAUTHENTICATED") {
    signInFirst();
    return;
  }
  showAlert(alert, error instanceof PageError ? error.key : "error.unexpected");
}

async function change(purpose, button) {
  const granted = button.getAttribute("aria-checked") !== "true";
  button.setAttribute("aria-busy", "true");
  showAlert(alert, null);
  status.textContent = "";
  try {
    const data = await gql(SET_CONSENT, { purpose, granted });
    const answer = data.setConsent;
    if (answer.__typename === "InputError") {
      showAlert(alert, codeMessage(answer.code));
      return;
    }
    showConsent(answer.consent);
    const on = answer.consent.granted;
    const key = answer.changed ? (on ? "consents.status.on" : "consents.status.off") : on ? "consents.status.unchanged-on" : "consents.status.unchanged-off";
    const said = [t(key, { purpose: purposeName(purpose) })];
    const { me } = await gql(CONSENT_HISTORY);
    showHistory(me.consentHistory || []);
    if (purpose === ADS && on && gpcRecord() !== null) {
      said.push(t("consents.status.gpc"));
    }
    status.textContent = said.join(" ");
  } catch (error) {
    failed(error);
  } finally {
    button.removeAttribute("aria-busy");
  }
}

async function show() {
  const loading = document.getElementById("loading");
  try {
    const { purposes, me } = await gql(MY_CONSENTS);
    descriptions = new Map(purposes.map((p) => [p.key, p.description]));
    const current = new Map((me.consents || []).map((c) => [c.purpose, c]));
    const needing = purposes.filter((p) => p.consentRequired);
    const other = purposes.filter((p) => !p.consentRequired);
    document.getElementById("choices").replaceChildren(...needing.map((p) => purposeItem(p, current.get(p.key))));
    document.getElementById("other").replaceChildren(...other.map((p) => purposeItem(p, null)));
    showHistory(me.consentHistory || []);
    loading.remove();
    document.getElementById("consents").hidden = false;
  } catch (error) {
    loading.remove();
    failed(error);
  }
}

show();
