// Who accessed my data: every access by our staff (`me.accessLog`, paged, newest first)
// and every disclosure to another organisation (`me.disclosures`), in the catalogue's words.
import { ACCESS_LOG, DISCLOSURES } from "./operations.js";
import { PageError, formatDate, gql, has, lang, showAlert, signInFirst, t } from "./centre.js";

const PAGE_SIZE = 10;
const accesses = document.getElementById("accesses");
const older = document.getElementById("older");
const olderStatus = document.getElementById("older-status");
let cursor = null;

/** The message of the first key the catalogue has; the last one always exists. */
function firstOf(...keys) {
  return t(keys.find((key) => has(key)) || keys[keys.length - 1]);
}

/** Values in the catalogue's words, each once, as the language lists them. */
function listed(values, word) {
  const words = [...new Set(values.map(word))];
  return new Intl.ListFormat(lang, { style: "long", type: "conjunction" }).format(words);
}

const role = (value) => firstOf(`access-log.role.${value}`, "access-log.role.other");
const category = (value) => firstOf(`access-log.category.${value}`, "access-log.category.other");
const action = (value) => firstOf(`access-log.action.${value}`, "access-log.action.other");
const basis = (value) => firstOf(`access-log.basis.${value}`, "access-log.basis.other");
const purpose = (value) =>
  firstOf(`access-log.purpose.${value}`, `purpose.${value}`, "access-log.purpose.other");

/** One entry: its moment as a heading, then its facts (label key, text). */
function entry(at, facts) {
  const item = document.createElement("li");
  const heading = document.createElement("h3");
  heading.tabIndex = -1;
  const time = document.createElement("time");
  time.dateTime = at;
  time.textContent = formatDate(at, true);
  heading.append(time);
  const list = document.createElement("dl");
  for (const [label, text, className] of facts) {
    const term = document.createElement("dt");
    term.textContent = t(label);
    const value = document.createElement("dd");
    value.textContent = text;
    if (className) {
      value.className = className;
    }
    list.append(term, value);
  }
  item.append(heading, list);
  return item;
}

function accessEntry(node) {
  return entry(node.at, [
    ["access-log.role", node.roles.length ? listed(node.roles, role) : t("access-log.role.other")],
    ["access-log.purpose", purpose(node.purpose)],
    ["access-log.data", listed(node.categories, category)],
    ["access-log.done", listed(node.actions, action)],
    ["access-log.reference", node.reference, "reference"],
  ]);
}

function disclosureEntry(row) {
  const facts = [
    ["access-log.recipient", row.recipient],
    ["access-log.data", listed(row.categories, category)],
  ];
  if (row.purpose) {
    facts.push(["access-log.purpose", purpose(row.purpose)]);
  }
  facts.push(["access-log.basis", basis(row.legalBasis)]);
  facts.push(["access-log.reference", row.reference, "reference"]);
  return entry(row.at, facts);
}

/** The next page of accesses, appended; the first of them, or null. */
async function loadAccesses() {
  const { me } = await gql(ACCESS_LOG, { first: PAGE_SIZE, after: cursor });
  const page = me.accessLog;
  const items = page.edges.map((edge) => accessEntry(edge.node));
  accesses.append(...items);
  cursor = page.pageInfo.endCursor;
  older.hidden = !page.pageInfo.hasNextPage;
  return items;
}

async function loadDisclosures() {
  const { me } = await gql(DISCLOSURES);
  const rows = me.disclosures || [];
  document.getElementById("disclosures").append(...rows.map(disclosureEntry));
  document.getElementById("disclosures-none").hidden = rows.length > 0;
}

function failed(error) {
  if (error instanceof PageError && error.key === "error.UNAUTHENTICATED") {
    signInFirst();
    return;
  }
  showAlert(document.getElementById("page-error"), error instanceof PageError ? error.key : "error.unexpected");
}

async function show() {
  const loading = document.getElementById("loading");
  try {
    const [first] = await Promise.all([loadAccesses(), loadDisclosures()]);
    document.getElementById("accesses-none").hidden = first.length > 0;
    document.getElementById("log").hidden = false;
  } catch (error) {
    failed(error);
  }
  loading.remove();
}

older.addEventListener("click", async () => {
  older.disabled = true;
  olderStatus.textContent = t("status.loading");
  try {
    const items = await loadAccesses();
    olderStatus.textContent = items.length
      ? t("access-log.older.shown", { count: String(items.length) })
      : t("access-log.older.none");
    if (items.length) {
      items[0].querySelector("h3").focus();
    }
  } catch (error) {
    olderStatus.textContent = "";
    failed(error);
  }
  older.disabled = false;
});

show();
