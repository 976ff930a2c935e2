"""Generation-free membership scores of given points: a few network calls each, no sampling (a registry).

Every score takes an ε̂ callable ``eps(x, t) -> ε̂`` with x (*L, n, d) float32 and t (*L, n) int64 (the same step
for every point of a call; L = () for one model, (R,) for memnb's ensembles), the schedule's ᾱ_t = prod_{s<=t}
(1 - beta_s) as a (T,) array (index t = 0..T-1, ᾱ_0 = 1 - beta_0), the points x0 (*L, n, d) and timesteps; it
returns (*L, n) float64 scores with **larger = more member-like** (the papers' distances, negated).

Timesteps are given in the papers' units, a 1000-step linear DDPM (beta 1e-4 to 0.02: `REFERENCE_ABAR`), and mapped
to the run's own schedule by equal ᾱ (`map_timesteps`). All five papers look at low-to-intermediate noise,
t <= 100 of 1000 (ᾱ >= 0.90); memnb's T = 50 linear schedule (ᾱ_49 = 0.60) has that band at t = 5..23 (reference
t = 20, 40, 60, 80, 100 -> memnb 5, 9, 14, 18, 23), and its whole chain reaches only the noise of a 1000-step
DDPM's t = 220. Notation: a_t = sqrt(ᾱ_t), s_t = sqrt(1 - ᾱ_t), x_t = a_t x0 + s_t ε.

- ``loss`` (Carlini et al. 2023, "loss threshold"; Matsumoto et al. 2023): -1/K sum_k ||ε̂(x_{t_k}, t_k) - ε_k||^2
  with fixed noise ε_k per point (the run's generators); SimA's repository ``DDPM/components.py`` class ``Loss``.
- ``pia`` (Kong et al., ICLR 2024; ``kong13661/PIA`` ``DDPM/attack.py`` with ``components.PIA``): the proximal
  initialisation ε0 = ε̂(x0, 0) replaces the random noise: -1/K sum_k ||ε̂(a_t x0 + s_t ε0, t_k) - ε0||_4^4
  (lp = 4; default t = 20, 40, ..., 100 as in the README's example).
- ``secmi`` (Duan et al., ICML 2023; ``jinhaoduan/SecMI`` ``mia_evals/secmia.py``, ``secmi_attack``: t_sec = 100,
  step k = 10): deterministic DDIM inversion x0 -> x_{t_1} -> ... -> x_{t_{J-1}}, one DDIM step forward to t_J
  and back; the t-error is -||x_{t_{J-1}} - back(forward(x_{t_{J-1}}))||^2. DDIM step from s to u with ε = ε̂(x, s):
  x_u = a_u (x - s_s ε) / a_s + s_u ε.
- ``sima`` (Rao et al. 2025; ``mx-ethan-rao/SimA`` ``DDPM/components.py`` class ``SimA``): the point itself fed
  as x_t, no noise: -||ε̂(x0, t)||_4^4 (one call; SimA reports its best single t of 0, 10, ..., 200).
- ``lid`` (Ross et al. 2024 with FLIPD, Kamkari et al. 2024; ``layer6ai-labs/diffusion_memorization``
  ``flipd_utils.py``): LID(x0) = d - s_t tr(∂ε̂/∂y)(y, t) + ||ε̂(y, t)||^2 at y = a_t x0 (the VP form of FLIPD:
  d + σ² (tr ∇s + ||s||²) with the score s = -ε̂/s_t); score = -LID (memorized points sit where the model's local
  dimension drops). The trace is exact (d backward passes: the code's "deterministic" method, used there below
  d = 3500).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..core.registry import DETECTORS

Eps = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# the papers' schedule: 1000 steps, beta linear from 1e-4 to 0.02 (Ho et al. 2020), ᾱ_t for t = 0..999
REFERENCE_ABAR = np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000))


def map_timesteps(abar, reference_steps: Sequence[int]) -> tuple[int, ...]:
    """The run's timesteps with the ᾱ nearest to the reference DDPM's at `reference_steps` (0..999), in order,
    duplicates merged. abar: (T,) the run's ᾱ_t. A step beyond the run's chain maps to T - 1."""
    abar = np.asarray(abar, np.float64)
    out = [int(np.argmin(np.abs(abar - REFERENCE_ABAR[int(s)]))) for s in reference_steps]
    return tuple(dict.fromkeys(out))


def _coefficients(abar, t: int) -> tuple[float, float]:
    """(a_t, s_t) = (sqrt(ᾱ_t), sqrt(1 - ᾱ_t)) as Python floats."""
    a = float(np.asarray(abar, np.float64)[int(t)])
    return a**0.5, (1.0 - a) ** 0.5


def _at(eps: Eps, x: torch.Tensor, t: int) -> torch.Tensor:
    """ε̂(x, t) with every point at step t: x (*L, n, d) -> (*L, n, d) float32."""
    steps = torch.full(x.shape[:-1], int(t), dtype=torch.int64, device=x.device)
    return eps(x, steps).float()


def _out(score: torch.Tensor) -> np.ndarray:
    return score.detach().cpu().numpy().astype(np.float64)


@torch.no_grad()
def denoising_loss(eps: Eps, abar, x0: torch.Tensor, timesteps: Sequence[int], noise: torch.Tensor) -> np.ndarray:
    """-1/K sum_k ||ε̂(a_k x0 + s_k ε_k, t_k) - ε_k||^2 (Carlini et al. 2023; Matsumoto et al. 2023).

    x0 (*L, n, d); noise (K, *L, n, d) fixed per point (K = len(timesteps)). Returns (*L, n); K calls per point.
    """
    total = torch.zeros(x0.shape[:-1], dtype=torch.float64, device=x0.device)
    for k, t in enumerate(timesteps):
        a, s = _coefficients(abar, t)
        e = noise[k].to(x0)
        total += ((_at(eps, a * x0 + s * e, t) - e) ** 2).sum(-1).double()
    return -_out(total) / len(timesteps)


@torch.no_grad()
def pia(eps: Eps, abar, x0: torch.Tensor, timesteps: Sequence[int], p: float = 4.0) -> np.ndarray:
    """PIA: -1/K sum_k ||ε̂(a_k x0 + s_k ε0, t_k) - ε0||_p^p with ε0 = ε̂(x0, 0) (Kong et al. 2024; lp = 4).

    x0 (*L, n, d). Returns (*L, n); 1 + K calls per point.
    """
    e0 = _at(eps, x0, 0)
    total = torch.zeros(x0.shape[:-1], dtype=torch.float64, device=x0.device)
    for t in timesteps:
        a, s = _coefficients(abar, t)
        total += ((_at(eps, a * x0 + s * e0, t) - e0).abs() ** p).sum(-1).double()
    return -_out(total) / len(timesteps)


def ddim_step(x: torch.Tensor, e: torch.Tensor, abar, t_from: int, t_to: int) -> torch.Tensor:
    """Deterministic DDIM step (Song et al. 2021, eta = 0) from t_from to t_to given ε̂ = e at t_from:
    x0_hat = (x - s_from e) / a_from, x_to = a_to x0_hat + s_to e (SecMI's ``ddim_singlestep``)."""
    a_f, s_f = _coefficients(abar, t_from)
    a_t, s_t = _coefficients(abar, t_to)
    return a_t * (x - s_f * e) / a_f + s_t * e


@torch.no_grad()
def secmi(eps: Eps, abar, x0: torch.Tensor, grid: Sequence[int]) -> np.ndarray:
    """SecMI's t-error (Duan et al. 2023): invert x0 along grid[0] = 0 < grid[1] < ... to x_{grid[-2]}, step
    forward to grid[-1] and back; -||x_{grid[-2]} - x_back||^2.

    x0 (*L, n, d); grid: increasing timesteps, at least 2 (SecMI: 0, 10, ..., 100 of 1000). Returns (*L, n);
    len(grid) calls per point (len(grid) - 2 for the inversion, 2 for the round trip).
    """
    grid = [int(t) for t in grid]
    if len(grid) < 2 or any(b <= a for a, b in zip(grid, grid[1:])):
        raise ValueError(f"grid = {grid!r} is invalid; allowed: at least 2 increasing timesteps")
    x = x0
    for a, b in zip(grid[:-2], grid[1:-1]):
        x = ddim_step(x, _at(eps, x, a), abar, a, b)
    s, u = grid[-2], grid[-1]
    forward = ddim_step(x, _at(eps, x, s), abar, s, u)
    back = ddim_step(forward, _at(eps, forward, u), abar, u, s)
    return -_out(((x - back) ** 2).sum(-1).double())


@torch.no_grad()
def sima(eps: Eps, abar, x0: torch.Tensor, timesteps: Sequence[int], p: float = 4.0) -> np.ndarray:
    """SimA (Rao et al. 2025): -1/K sum_k ||ε̂(x0, t_k)||_p^p, the point itself fed as x_t (lp = 4).

    x0 (*L, n, d). Returns (*L, n); K calls per point.
    """
    total = torch.zeros(x0.shape[:-1], dtype=torch.float64, device=x0.device)
    for t in timesteps:
        total += (_at(eps, x0, t).abs() ** p).sum(-1).double()
    return -_out(total) / len(timesteps)


def local_dimension(eps: Eps, abar, x0: torch.Tensor, t: int) -> np.ndarray:
    """FLIPD's local intrinsic dimension (Kamkari et al. 2024) at x0, VP form with an ε-predictor:
    LID = d - s_t tr(∂ε̂/∂y)(y, t) + ||ε̂(y, t)||^2, y = a_t x0; the trace exact (one backward pass per coordinate).

    x0 (*L, n, d). Returns (*L, n) (not negated). Cost: 1 forward and d backward passes per point.
    """
    a, s = _coefficients(abar, t)
    with torch.enable_grad():
        y = (a * x0.detach()).requires_grad_(True)
        e = _at(eps, y, t)
        d = x0.shape[-1]
        trace = torch.zeros(x0.shape[:-1], dtype=torch.float64, device=x0.device)
        for i in range(d):  # points and members are independent: grad of the sum is each point's own row
            (g,) = torch.autograd.grad(e[..., i].sum(), y, retain_graph=i < d - 1)
            trace += g[..., i].double()
    return _out(d - s * trace + (e.detach() ** 2).sum(-1).double())


def lid(eps: Eps, abar, x0: torch.Tensor, timesteps: Sequence[int]) -> np.ndarray:
    """-1/K sum_k LID(x0, t_k) (`local_dimension`): larger = lower local dimension = more member-like."""
    return -sum(local_dimension(eps, abar, x0, t) for t in timesteps) / len(timesteps)


# -- the registry ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Detector:
    """One generation-free detector.

    score(eps, abar, x0, timesteps, noise) -> (*L, n) scores (larger = more member-like), timesteps already mapped
    to the run's schedule, noise (K, *L, n, d) or None; reference_steps: its default timesteps in the papers'
    1000-step DDPM (`map_timesteps`); calls(d, K): network evaluations per point (a backward pass counted as
    one); noise: whether it needs fixed noise per point and timestep; paper, code: where it comes from.
    """

    name: str
    score: Callable
    reference_steps: tuple[int, ...]
    calls: Callable[[int, int], int]
    noise: bool
    paper: str
    code: str

    def timesteps(self, abar) -> tuple[int, ...]:
        """Its default timesteps on the schedule ᾱ (`map_timesteps`)."""
        return map_timesteps(abar, self.reference_steps)


BAND = (20, 40, 60, 80, 100)  # t <= 100 of 1000: PIA's README example, Matsumoto's and Carlini's low-noise band


def _loss(eps, abar, x0, ts, noise):
    return denoising_loss(eps, abar, x0, ts, noise)


def _pia(eps, abar, x0, ts, noise):
    return pia(eps, abar, x0, ts)


def _secmi(eps, abar, x0, ts, noise):
    return secmi(eps, abar, x0, ts)


def _sima(eps, abar, x0, ts, noise):
    return sima(eps, abar, x0, ts)


def _lid(eps, abar, x0, ts, noise):
    return lid(eps, abar, x0, ts)


def _k_calls(d: int, k: int) -> int:  # one call per timestep
    return k


def _pia_calls(d: int, k: int) -> int:  # ε̂(x0, 0) once, then one per timestep
    return 1 + k


def _lid_calls(d: int, k: int) -> int:  # a forward and d backward passes per timestep
    return k * (1 + d)


for _record in (
    Detector(
        "loss",
        _loss,
        BAND,
        _k_calls,
        True,
        "Carlini et al. 2023; Matsumoto et al. 2023",
        "mx-ethan-rao/SimA DDPM/components.py (Loss)",
    ),
    Detector(
        "pia", _pia, BAND, _pia_calls, False, "Kong et al., ICLR 2024", "kong13661/PIA DDPM/attack.py (components.PIA)"
    ),
    # t_sec = 100, k = 10: the grid 0, 10, ..., 100 (its length is the calls per point)
    Detector(
        "secmi",
        _secmi,
        tuple(range(0, 101, 10)),
        _k_calls,
        False,
        "Duan et al., ICML 2023",
        "jinhaoduan/SecMI mia_evals/secmia.py (secmi_attack)",
    ),
    # one call in the middle of the band (SimA scans t = 0, 10, ..., 200 and reports its best)
    Detector("sima", _sima, (60,), _k_calls, False, "Rao et al. 2025", "mx-ethan-rao/SimA DDPM/components.py (SimA)"),
    # ᾱ = 0.97: FLIPD's small t0 (VP time 0.05)
    Detector(
        "lid",
        _lid,
        (50,),
        _lid_calls,
        False,
        "Ross et al. 2024 (FLIPD: Kamkari et al. 2024)",
        "layer6ai-labs/diffusion_memorization flipd_utils.py",
    ),
):
    DETECTORS.register(_record)
