// The address fields the sign-up and profile pages share (a fieldset of inputs named
// `address.line1` ... `address.country`, the country a select of ISO 3166 codes): the
// countries named in the reader's language, the `AddressInput` the fields make, the fields
// filled from an `Address`, and an `Address` as the lines of a postal address.
import { lang } from "./centre.js";
import { value } from "./forms.js";

// Name the country select's options in the reader's language, sort them, select `chosen`.
export function nameCountries(select, chosen = "") {
  const names = new Intl.DisplayNames([lang], { type: "region" });
  const options = [...select.options];
  for (const option of options) {
    option.textContent = names.of(option.value) || option.value;
  }
  options.sort((a, b) => a.textContent.localeCompare(b.textContent, lang));
  select.replaceChildren(...options);
  select.value = chosen;
}

// The `AddressInput` of `form`'s address fields (an empty optional field is null).
export function addressInput(form) {
  return {
    line1: value(form, "address.line1"),
    line2: value(form, "address.line2") || null,
    city: value(form, "address.city"),
    postalCode: value(form, "address.postalCode") || null,
    country: value(form, "address.country"),
  };
}

// Fill `form`'s address fields from an `Address` (or empty them for null).
export function fillAddress(form, address) {
  for (const name of ["line1", "line2", "city", "postalCode", "country"]) {
    form.elements.namedItem(`address.${name}`).value = (address && address[name]) || "";
  }
}

// An `Address` as its lines, the country named in the reader's language.
export function addressLines(address) {
  if (!address) {
    return [];
  }
  const names = new Intl.DisplayNames([lang], { type: "region" });
  return [
    address.line1,
    address.line2,
    [address.postalCode, address.city].filter(Boolean).join(" "),
    names.of(address.country) || address.country,
  ].filter(Boolean);
}
