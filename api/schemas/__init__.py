"""The API's models, per resource: `XCreate` / `XUpdate` bodies (camelCase, validated
at the boundary, turned into invoicing specs by `to_spec()`) and `XPublic` responses
(built from ledger rows by `from_row`)."""
