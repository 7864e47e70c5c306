-- Invitations announced for the product's mailer: every new invitation, new token (resend) and
-- change of status goes out on roster_changes at commit, whoever writes, as
--   {"kind": "invitation", "tenant_id", "organization_id", "invitation_id", "email", "role",
--    "status", "expires_at", "sent_at"}
-- never with the token (the mailer gets it from invite's or resend's result). The cache does
-- not use these: the organization's version bump (V27) is what tells it.

-- ============================================================================================
-- Triggers
-- ============================================================================================

create function roster.tg_invitations__notify() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'UPDATE' and (old.status, old.sent_at) is not distinct from (new.status, new.sent_at) then
    return null;
  end if;
  perform pg_notify('roster_changes', jsonb_build_object(
    'kind', 'invitation', 'tenant_id', new.tenant_id, 'organization_id', new.organization_id,
    'invitation_id', new.id, 'email', new.email, 'role', new.role, 'status', new.status,
    'expires_at', new.expires_at, 'sent_at', new.sent_at)::text);
  return null;
end
$$;
comment on function roster.tg_invitations__notify() is
  'Trigger: announces a new invitation, a new token or a new status on channel roster_changes (never the token).';

create trigger tg_invitations__notify after insert or update on roster.invitations
  for each row execute function roster.tg_invitations__notify();
