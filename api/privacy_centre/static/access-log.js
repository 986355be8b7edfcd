// Who accessed my data: every access by our staff (`me.accessLog`, paged, newest first)
// and every disclosure to another organisation (`me.disclosures`), in the catalogue's words.
// Once a page of accesses is shown, the browser checks each one against the signed log
// (log-proof.js: the entry's evidence, the customer's id, the log's published keys) and
// says per entry whether it is checked, not yet in a signed checkpoint, or failed.
import { ACCESS_LOG, DISCLOSURES } from "./operations.js";
import { PageError, formatDate, gql, has, lang, showAlert, signInFirst, t } from "./centre.js";
import { checkEvidence } from "./log-proof.js";

const PAGE_SIZE = 10;
const LOG_KEYS = "/.well-known/custos/log-keys";
const accesses = document.getElementById("accesses");
const older = document.getElementById("older");
const olderStatus = document.getElementById("older-status");
const checkStatus = document.getElementById("check-status");
let cursor = null;
let customerId = null;
let logKeys = null;
const tally = { checked: 0, pending: 0, failed: 0, unavailable: 0 };

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

/** One entry: its moment as a heading, then its facts (label key, text, class). */
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
    ["access-log.check", t("access-log.check.running"), "proof"],
  ]);
}

/** The log's verifier keys, fetched once per page load (same origin, no sign-in): null
 * when they could not be loaded; anything else is handed to checkEvidence, which refuses
 * what is not a list of keys (bad-key). */
function verifierKeys() {
  if (logKeys === null) {
    logKeys = fetch(LOG_KEYS, { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((published) => {
        if (published === null) {
          return null;
        }
        const keys = typeof published === "object" ? published.keys : undefined;
        return Array.isArray(keys) ? keys.map((key) => (key && key.vkey) || key) : false;
      })
      .catch(() => null);
  }
  return logKeys;
}

/** What the check of one entry found: { state: "checked", size, signedAt } when every
 * item of its evidence verifies; { state: "failed", reason } when one does not (that
 * wins); { state: "pending" } when an item has no proof yet (or there is no item yet);
 * { state: "unavailable" } when the keys could not be loaded. */
async function verdict(node) {
  const evidence = Array.isArray(node.evidence) ? node.evidence : [];
  const unproven = (item) => item !== null && typeof item === "object" && item.proof === null;
  const proven = evidence.filter((item) => !unproven(item));
  const pending = evidence.length === 0 || proven.length < evidence.length;
  if (proven.length === 0) {
    return { state: "pending" };
  }
  const keys = await verifierKeys();
  if (keys === null) {
    return { state: "unavailable" };
  }
  let checked = null;
  for (const item of proven) {
    const result = await checkEvidence(item, customerId, keys);
    if (!result.ok) {
      return { state: "failed", reason: result.reason };
    }
    checked = checked === null || result.signedAt > checked.signedAt ? result : checked;
  }
  return pending ? { state: "pending" } : { state: "checked", ...checked };
}

function verdictText(found, node) {
  if (found.state === "checked") {
    const size = new Intl.NumberFormat(lang).format(found.size);
    const date = formatDate(found.signedAt.toISOString(), true);
    return t("access-log.check.checked", { size, date });
  }
  if (found.state === "failed") {
    const reason = firstOf(
      `access-log.check.reason.${found.reason}`,
      "access-log.check.reason.other",
    );
    return t("access-log.check.failed", { reason, reference: node.reference });
  }
  return t(`access-log.check.${found.state}`);
}

/** Check each shown entry (after the list is on screen: nothing waits for it), then say
 * in the live region how many entries, of all shown so far, are in which state. */
async function checkAll(nodes, items) {
  await Promise.all(
    nodes.map(async (node, at) => {
      let found;
      try {
        found = await verdict(node);
      } catch {
        found = { state: "failed", reason: "other" };
      }
      const status = items[at].querySelector(".proof");
      status.dataset.state = found.state;
      status.textContent = verdictText(found, node);
      tally[found.state] += 1;
    }),
  );
  const total = tally.checked + tally.pending + tally.failed + tally.unavailable;
  const counts = { checked: String(tally.checked), count: String(total) };
  const parts = [t("access-log.check.summary", counts)];
  for (const state of ["pending", "failed", "unavailable"]) {
    if (tally[state] > 0) {
      parts.push(t(`access-log.check.summary.${state}`, { count: String(tally[state]) }));
    }
  }
  checkStatus.textContent = parts.join(" ");
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
  customerId = me.id;
  const page = me.accessLog;
  const nodes = page.edges.map((edge) => edge.node);
  const items = nodes.map(accessEntry);
  accesses.append(...items);
  cursor = page.pageInfo.endCursor;
  older.hidden = !page.pageInfo.hasNextPage;
  return { nodes, items };
}

/** Start checking what was just shown; a failure of the checker itself never reaches
 * the page's alert (the list is shown either way). */
function check({ nodes, items }) {
  if (nodes.length > 0) {
    checkAll(nodes, items).catch(() => {});
  }
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
    document.getElementById("accesses-none").hidden = first.items.length > 0;
    document.getElementById("log").hidden = false;
    check(first);
  } catch (error) {
    failed(error);
  }
  loading.remove();
}

older.addEventListener("click", async () => {
  older.disabled = true;
  olderStatus.textContent = t("status.loading");
  try {
    const shown = await loadAccesses();
    const { items } = shown;
    olderStatus.textContent = items.length
      ? t("access-log.older.shown", { count: String(items.length) })
      : t("access-log.older.none");
    if (items.length) {
      items[0].querySelector("h3").focus();
    }
    check(shown);
  } catch (error) {
    olderStatus.textContent = "";
    failed(error);
  }
  older.disabled = false;
});

show();
