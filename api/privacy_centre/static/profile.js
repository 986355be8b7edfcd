// The profile: what `me` holds about the signed-in customer.
import { ME } from "./operations.js";
import { PageError, formatDate, gql, lang, showAlert, signInFirst, t } from "./centre.js";

function text(id, value) {
  document.getElementById(id).textContent = value || "";
}

function addressLines(address) {
  if (!address) {
    return "";
  }
  const names = new Intl.DisplayNames([lang], { type: "region" });
  return [
    address.line1,
    address.line2,
    [address.postalCode, address.city].filter(Boolean).join(" "),
    names.of(address.country) || address.country,
  ]
    .filter(Boolean)
    .join("\n");
}

async function show() {
  const loading = document.getElementById("loading");
  try {
    const { me } = await gql(ME);
    text("email", me.email);
    text("email-state", `(${t(me.emailVerified ? "profile.verified" : "profile.unverified")})`);
    if (me.pendingEmail) {
      const pending = document.getElementById("pending-email");
      pending.textContent = t("profile.pending", { email: me.pendingEmail });
      pending.hidden = false;
    }
    text("phone", me.phone);
    const address = document.getElementById("address");
    for (const [n, line] of addressLines(me.address).split("\n").entries()) {
      if (n > 0) {
        address.append(document.createElement("br"));
      }
      address.append(line);
    }
    text("since", formatDate(me.createdAt));
    document.getElementById("profile").hidden = false;
    loading.remove();
  } catch (error) {
    if (error instanceof PageError && error.key === "error.UNAUTHENTICATED") {
      signInFirst();
      return;
    }
    loading.remove();
    showAlert(document.getElementById("page-error"), error instanceof PageError ? error.key : "error.unexpected");
  }
}

show();
