-- A new function is executable by nobody until it is granted. PostgreSQL's default grants
-- EXECUTE to PUBLIC on every new function, which is why each earlier migration ends with
-- `revoke execute on all functions in schema roster from public`: a function created after
-- that line (or by a DBA in psql) would be callable by every role, roster_app included.
--
-- Default privileges belong to the role that creates the objects (the one running the
-- migrations) and to this database. A per-schema REVOKE cannot take back PUBLIC's global
-- default, hence the statement without `in schema`: it covers every function this role
-- creates in this database. Grants stay explicit, function by function (see each migration's
-- Grants section).

alter default privileges revoke execute on functions from public;
