"""SQL the backup checks run, written once: the agent (row counts after a restore) and the
scratch server of a full check both use it. Also the field quoting of a libpq password file,
which the agent and the release's login preflight both write."""


def passfile_field(value: str) -> str:
    """A value for one field of a PGPASSFILE line (':' and '\\' escaped)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


# One line per table: "<schema>.<table>|<rows>".
TABLE_COUNTS = """
select format('%I.%I', n.nspname, c.relname) || '|' ||
  (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
order by 1
"""
