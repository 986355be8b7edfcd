"""The privacy centre: the pages where customers keep the policy's promises themselves
(docs/PRIVACY_CENTRE.md). Each page is a small HTML document rendered here from a template
and the message catalogue of the reader's language; what it does is done by ES modules
(static/) that call the public GraphQL API, as the shop's own frontend would. Nothing is
built at run time and nothing is loaded from elsewhere."""
