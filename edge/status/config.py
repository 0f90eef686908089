"""``health:`` and ``http:`` in a config: the thresholds of the sensor health judgement and the
status endpoint.

Config types only: nothing here imports the health monitor, the endpoint's server or
prometheus-client (edge.config reads this).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from edge.files import read_secret


class HealthConfig(BaseModel):
    """Thresholds of the sensor health judgement (``health:`` in a config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon: float = Field(5.0, gt=0, le=60, description="Seconds of ticks each judgement covers.")
    masked_degraded: float = Field(
        0.2, ge=0, le=1, description="Masked share of a modality that makes it degraded."
    )
    masked_lost: float = Field(0.9, ge=0, le=1, description="Masked share that makes it lost.")
    age_degraded: float = Field(1.0, gt=0, description="Data age (s) that makes it degraded.")
    age_lost: float = Field(5.0, gt=0, description="Data age (s) that makes it lost.")
    dark_mean: float = Field(
        12.0, ge=0, le=255, description="Mean grey level (BT.601 luma) below which video is dark."
    )
    bright_mean: float = Field(
        243.0, ge=0, le=255, description="Mean grey level above which video is overexposed."
    )
    flat_std: float = Field(
        3.0, ge=0, description="Grey-level spread below which video is occluded (a flat image)."
    )
    clip_fraction: float = Field(
        0.01, ge=0, le=1, description="Share of audio samples at full scale that means clipping."
    )
    band_limited_db: float | None = Field(
        -30.0,
        le=0,
        description="Level (dB) of audio's 4.4-7.6 kHz band under its 2-3.6 kHz band, 90th "
        "percentile over about a minute of sound, below which the microphone hears nothing above "
        "4 kHz (8 kHz sampling); null: no check.",
    )


class HttpConfig(BaseModel):
    """The status endpoint (``http:`` in a config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Address to bind; not loopback needs a token.")
    port: int = Field(8787, ge=0, le=65535, description="TCP port (0: any free port).")
    token_env: str | None = Field(None, description="Environment variable holding the token.")
    token_file: str | None = Field(None, description="File holding the token.")

    def token(self) -> str | None:
        """The bearer token, or None; a missing source is a config error."""
        where = "http.token_env" if self.token_env else "http.token_file"
        value = read_secret(where, self.token_env, self.token_file)
        return None if value is None else value.strip()
