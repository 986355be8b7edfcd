// One rights request as the page lists it: what it is, its status in plain words, its
// dates, and what the customer can do with it now (enter the mailed code, ask for it
// again, withdraw it); for an answered access request, where the download link went; for
// a correction or erasure, the recipients of the data we told and whether each confirmed.
import { formatDate, t } from "./centre.js";

const CANCELLABLE = new Set(["UNVERIFIED", "PENDING", "APPROVED", "EXTENDED"]);

function element(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, value);
  }
  if (text !== null) {
    node.textContent = text;
  }
  return node;
}

function fact(list, key, value) {
  const row = element("div");
  row.append(element("dt", {}, t(key)), element("dd", {}, value));
  list.append(row);
}

function exportNote(request) {
  const answer = request.export;
  if (request.kind !== "ACCESS" || !answer) {
    return null;
  }
  let text;
  if (answer.downloadedAt) {
    text = t("rights.export.downloaded", { date: formatDate(answer.downloadedAt, true) });
  } else if (answer.available) {
    text = t("rights.export.mailed", {
      mailed: formatDate(answer.mailedAt, true),
      expires: formatDate(answer.expiresAt, true),
    });
  } else {
    text = t("rights.export.expired", { date: formatDate(answer.expiresAt, true) });
  }
  return element("p", { class: "notice", id: `export-${request.id}` }, text);
}

function codeForm(request) {
  const id = `code-${request.id}`;
  const form = element("form", { class: "code-form", method: "post", novalidate: "" });
  form.dataset.request = request.id;
  const field = element("div", { class: "field" });
  field.append(
    element("label", { for: id }, t("rights.code")),
    element("p", { class: "hint", id: `${id}-hint` }, t("rights.code.hint")),
    element("input", {
      id,
      name: "code",
      inputmode: "numeric",
      autocomplete: "one-time-code",
      "aria-describedby": `${id}-hint ${id}-error`,
    }),
    element("p", { class: "field-error", id: `${id}-error` }),
  );
  const actions = element("p", { class: "actions" });
  const resend = element("button", { type: "button", class: "link-button" }, t("rights.code.resend"));
  resend.dataset.action = "resend";
  resend.dataset.request = request.id;
  actions.append(element("button", { type: "submit" }, t("rights.code.confirm")), resend);
  form.append(field, actions);
  return form;
}

function recipientList(request) {
  const told = request.recipients || [];
  if (told.length === 0) {
    return null;
  }
  const section = element("div", { class: "recipients", id: `recipients-${request.id}` });
  section.append(element("p", {}, t("rights.recipients")));
  const list = element("ul");
  for (const recipient of told) {
    const status = t(`rights.recipient.${recipient.status}`);
    list.append(element("li", {}, `${recipient.recipient}: ${status}`));
  }
  section.append(list);
  return section;
}

/** The list item of `request` (a `me.rightsRequests` entry). */
export function requestItem(request) {
  const item = element("li", { id: `request-${request.id}` });
  item.append(element("h3", { tabindex: "-1" }, t(`rights.request.${request.kind}`)));
  const facts = element("dl");
  fact(facts, "rights.status", t(`rights.status.${request.status}`));
  fact(facts, "rights.submitted-at", formatDate(request.submittedAt, true));
  if (request.receivedAt) {
    fact(facts, "rights.received-at", formatDate(request.receivedAt, true));
  }
  if (request.dueAt && !request.completedAt) {
    fact(facts, "rights.due", formatDate(request.dueAt));
  }
  if (request.extended && request.extensionReason) {
    fact(facts, "rights.extension", request.extensionReason);
  }
  if (request.decisionReason) {
    fact(facts, "rights.decision", request.decisionReason);
  }
  if (request.completedAt) {
    fact(facts, "rights.completed-at", formatDate(request.completedAt, true));
  }
  item.append(facts);
  if (request.overdue) {
    item.append(element("p", { class: "field-error" }, t("rights.overdue")));
  }
  const note = exportNote(request);
  if (note) {
    item.append(note);
  }
  const recipients = recipientList(request);
  if (recipients) {
    item.append(recipients);
  }
  item.append(element("div", { class: "alert", id: `alert-${request.id}`, role: "alert" }));
  if (request.status === "UNVERIFIED") {
    item.append(codeForm(request));
  }
  if (CANCELLABLE.has(request.status)) {
    const cancel = element("button", { type: "button", class: "link-button" }, t("rights.cancel"));
    cancel.dataset.action = "cancel";
    cancel.dataset.request = request.id;
    const line = element("p");
    line.append(cancel);
    item.append(line);
  }
  return item;
}
