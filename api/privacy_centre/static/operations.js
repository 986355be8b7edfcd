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

export const REQUEST_PASSWORD_RESET = `mutation RequestPasswordReset($email: String!) {
  requestPasswordReset(email: $email) {
    __typename
    ... on PasswordResetRequested { linkValidMinutes }
    ... on InputError { code field }
  }
}`;

export const RESET_PASSWORD = `mutation ResetPassword($token: String!, $newPassword: String!) {
  resetPassword(token: $token, newPassword: $newPassword) {
    __typename
    ... on TokenError { code }
    ... on InputError { code field fields { field code } }
  }
}`;

export const RESEND_VERIFICATION_EMAIL = `mutation ResendVerificationEmail($email: String!) {
  resendVerificationEmail(email: $email) {
    __typename
    ... on VerificationResent { linkValidHours }
    ... on InputError { code field }
  }
}`;

export const SIGN_IN = `mutation SignIn($email: String!, $password: String!) {
  login(email: $email, password: $password) {
    __typename
    ... on LoginSuccess { customer { emailVerified } }
    ... on InvalidCredentials { code }
  }
}`;

// profile: editing, password, email

export const UPDATE_PROFILE = `mutation UpdateProfile($input: UpdateProfileInput!) {
  updateProfile(input: $input) {
    __typename
    ... on ProfileUpdated { emailChangePending }
    ... on InputError { code field fields { field code } }
    ... on InvalidCredentials { code }
  }
}`;

export const CANCEL_EMAIL_CHANGE = `mutation CancelEmailChange { cancelEmailChange { cancelled } }`;

export const CHANGE_PASSWORD = `mutation ChangePassword($currentPassword: String!, $newPassword: String!) {
  changePassword(currentPassword: $currentPassword, newPassword: $newPassword) {
    __typename
    ... on PasswordChanged { otherSessionsRevoked }
    ... on InputError { code field fields { field code } }
    ... on InvalidCredentials { code }
  }
}`;

// consents and policy acceptance

export const MY_CONSENTS = `query MyConsents {
  purposes { key description legalBasis consentRequired }
  me {
    consents { purpose granted state at source }
    consentHistory { purpose granted at source policyVersion }
  }
}`;

export const CONSENT_HISTORY = `query ConsentHistory {
  me { consentHistory { purpose granted at source policyVersion } }
}`;

export const SET_CONSENT = `mutation SetConsent($purpose: String!, $granted: Boolean!) {
  setConsent(purpose: $purpose, granted: $granted) {
    __typename
    ... on ConsentSet { changed consent { purpose granted state at source } }
    ... on InputError { code field }
  }
}`;

export const PENDING_POLICY = `query PendingPolicy {
  me { pendingPolicy { version effectiveAt summary changedPurposes } }
}`;

export const ACCEPT_POLICY = `mutation AcceptPolicy($version: String!) {
  acceptPolicy(version: $version) {
    __typename
    ... on PolicyAccepted { changed policy { version } }
    ... on InputError { code field }
  }
}`;

// rights requests

export const MY_RIGHTS_REQUESTS = `query MyRightsRequests {
  me {
    rightsRequests {
      id kind status submittedAt receivedAt dueAt overdue extended extensionReason
      decisionReason completedAt
      export { mailedAt expiresAt downloadedAt available }
      recipients { recipient status }
    }
  }
}`;

export const SUBMIT_RIGHTS_REQUEST = `mutation SubmitRightsRequest($kind: RightsRequestKind!, $details: String!, $changes: RectificationInput) {
  submitRightsRequest(kind: $kind, details: $details, changes: $changes) {
    __typename
    ... on RightsRequestReceipt { id status alreadyOpen }
    ... on RightsError { code field }
  }
}`;

export const VERIFY_RIGHTS_REQUEST = `mutation VerifyRightsRequest($id: ID!, $code: String!) {
  verifyRightsRequest(id: $id, code: $code) {
    __typename
    ... on RightsRequestReceipt { id status dueAt }
    ... on RightsError { code attemptsLeft }
  }
}`;

export const RESEND_RIGHTS_REQUEST_CODE = `mutation ResendRightsRequestCode($id: ID!) {
  resendRightsRequestCode(id: $id) { code }
}`;

export const CANCEL_RIGHTS_REQUEST = `mutation CancelRightsRequest($id: ID!) {
  cancelRightsRequest(id: $id) {
    __typename
    ... on RightsRequestReceipt { id status }
    ... on RightsError { code }
  }
}`;

// access log
export const ACCESS_LOG = `query AccessLog($first: Int!, $after: String) {
  me {
    id
    accessLog(first: $first, after: $after) {
      edges {
        node {
          reference at roles purpose categories actions
          evidence { leaf subjectKey proof { leafIndex treeSize hashes checkpoint } }
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;

export const DISCLOSURES = `query Disclosures {
  me { disclosures { at recipient categories purpose legalBasis reference } }
}`;
