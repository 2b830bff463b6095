"""The customer portal: the account API's reads behind a portal token, and the pages
at /portal that show them (server-rendered, a session cookie traded for the token)."""
