"""What the fleet test and its worker processes share: configurations and profiles."""

from __future__ import annotations

from dataclasses import dataclass

from fieldauth import Budget, Config, Preset, Profile, Session

API_PATH = {"fentu": "/v1/work-orders", "autotask": "/ATServicesRest/V1.0/Companies"}

#: The API budget the fleet test holds the fleet to: 40 requests in any 10 s (4 back to back),
#: short enough to check in a short run (the emulator counts 10 s windows).
API_BUDGET = Budget(40, 10, 4)
WINDOW_S = 10


def config(base: str, provider: str) -> Config:
    if provider == "fentu":
        return Config(
            base_url=base,
            client_id="demo-client",
            client_secret="demo-secret",
            redirect_uri="http://127.0.0.1:9/callback",
            scope="read:work-orders",
        )
    return Config(base_url=base, client_id="demo-client", client_secret="demo-secret")


@dataclass
class _Profile:
    profile: Profile

    def session(self, cfg: Config) -> Session:
        return Session(self.profile, cfg)


def profile(provider: str) -> _Profile:
    p = Profile.preset(Preset.FENTU_OAUTH if provider == "fentu" else Preset.AUTOTASK)
    p.api_budget = Budget(API_BUDGET.requests, API_BUDGET.window_s, API_BUDGET.burst)
    return _Profile(p)
