// The GraphQL operations the privacy centre sends: the public API, as the shop's own
// frontend would call it (schema.graphql). No token is ever read: the session is the
// HttpOnly cookie that `login` sets.

export const PURPOSES = `query Purposes {
  purposes { key description legalBasis consentRequired }
}`;

export const REGISTER = `mutation Register($input: RegisterInput!) {
  register(input: $input) {
    __typename
    ... on InputError { code field fields { field code } }
  }
}`;

export const VERIFY_EMAIL = `mutation VerifyEmail($token: String!) {
  verifyEmail(token: $token) {
    __typename
    ... on TokenError { code }
  }
}`;

export const LOGIN = `mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) {
    __typename
    ... on InvalidCredentials { code }
  }
}`;

export const LOGOUT = `mutation Logout { logout }`;

export const ME = `query Me {
  me {
    email emailVerified pendingEmail phone createdAt
    address { line1 line2 city postalCode country }
  }
}`;

export const POLICIES = `query Policies {
  currentPolicy {
    version effectiveAt text
    controller { name contact dpo }
  }
  policyHistory { version effectiveAt material summary inEffect }
}`;

// recovery: forgotten password, reset, verification mail again

// profile: editing, password, email

// consents and policy acceptance

// rights requests

// access log
