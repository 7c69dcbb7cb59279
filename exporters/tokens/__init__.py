"""The token-cost exporter's HTTP app: `POST /v1/events` in, LLM usage metrics out (via `exporters.llm`)."""

from .api import BATCH, PATH, SINGLE, Credential, EventsAPI, TokenAuth, hash_token

__all__ = ["BATCH", "PATH", "SINGLE", "Credential", "EventsAPI", "TokenAuth", "hash_token"]
