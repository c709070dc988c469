"""The seed documents' event ingest, as a peer for `bench_events.py`: FastAPI and pydantic validate
each batch of `POST /api/v1/events` (the extension's fields), asyncpg writes it with one COPY into
PostgreSQL, and the answer comes after the insert. Nothing is applied to a class picture (the
seeds queue that for a worker), and repeated eventIds are stored again (COPY cannot skip them).

    DATABASE_URL=postgres://… uvicorn seed_stack:app --workers 2 --app-dir scripts

Installed from PyPI by the benchmark (fastapi, uvicorn, asyncpg); not a dependency of Pulseboard."""
import json
import os
from contextlib import asynccontextmanager
from datetime import datetime
from typing import List, Optional

import asyncpg
from fastapi import FastAPI
from pydantic import BaseModel

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_time TIMESTAMPTZ NOT NULL,
    email TEXT,
    payload JSONB NOT NULL
)
"""


class EventData(BaseModel):
    eventId: str
    eventType: str
    eventTime: datetime
    emailAddress: Optional[str] = None
    userName: Optional[str] = None
    teamName: Optional[str] = None
    sessionId: Optional[str] = None
    notebookPath: Optional[str] = None
    cellId: Optional[str] = None
    cellIndex: Optional[int] = None
    cellType: Optional[str] = None
    code: Optional[str] = None
    executionCount: Optional[int] = None
    hasError: Optional[bool] = None
    errorMessage: Optional[str] = None
    result: Optional[str] = None
    executionDurationMs: Optional[float] = None


pool = None


@asynccontextmanager
async def lifespan(_):
    global pool
    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=2, max_size=16)
    async with pool.acquire() as connection, connection.transaction():
        # Both workers start at once, and two concurrent CREATE TABLE IF NOT EXISTS can collide
        # in PostgreSQL's catalog (a unique violation that killed a worker now and then).
        await connection.execute("SELECT pg_advisory_xact_lock(4004)")
        await connection.execute(SCHEMA)
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/api/v1/events")
async def receive(events: List[EventData]):
    records = [(e.eventId, e.eventType, e.eventTime, e.emailAddress, json.dumps(e.model_dump(mode="json", exclude_none=True)))
               for e in events]
    async with pool.acquire() as connection:
        await connection.copy_records_to_table("events", records=records, columns=["event_id", "event_type", "event_time", "email", "payload"])
    return {"message": f"{len(events)} events received and queued for processing."}
