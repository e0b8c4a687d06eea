"""Helpers for the backup tests: seed pgvector data and query a db container with psql."""

from __future__ import annotations

SEED = """
create table items (id int primary key, title text, embedding vector(384));
insert into items
  select i, 'item ' || i, (select array_agg(random())::vector(384) from generate_series(1, 384) where i > 0)
  from generate_series(1, {rows}) i;
create index items_embedding_hnsw on items using hnsw (embedding vector_l2_ops);
"""
FINGERPRINT = "select count(*) || ':' || md5(string_agg(vector_send(embedding), ''::bytea order by id)) from items"
TOP10 = (
    "set hnsw.ef_search = 100; "
    "select string_agg(id::text, ',' order by d, id) from "
    "(select id, embedding <-> (select embedding from items where id = 42) as d from items order by 2 limit 10) s"
)
HNSW = "select count(*) from pg_indexes where tablename = 'items' and indexdef ilike '%using hnsw%'"


def psql(container, sql: str, db: str | None = None, user: str | None = None) -> str:
    env = {"Q": sql}
    target = f'"{db}"' if db else '"$POSTGRES_DB"'
    who = f'"{user}"' if user else '"$POSTGRES_USER"'
    code, out = container.exec_run(["sh", "-c", f'psql -XAtq -v ON_ERROR_STOP=1 -U {who} -d {target} -c "$Q"'], environment=env)
    assert code == 0, out.decode()
    return out.decode().strip().splitlines()[-1] if out.strip() else ""


def seed(container, rows: int = 3000) -> None:
    psql(container, SEED.format(rows=rows))
