-- Only owners change member roles (the seed design's rule): admins keep adding, inviting,
-- suspending and removing non-owners, but members:update_role is the owner's alone (and a
-- tenant admin's, who holds the owner's permissions). Custom roles (a later migration) let an
-- organization give role changes to a role of its choosing.

delete from roster.role_permissions where role = 'admin' and permission = 'members:update_role';
