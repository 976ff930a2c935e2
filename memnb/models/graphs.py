"""CUDA graphs of the ensemble's training step and of the sampler's chunk, with the eager path as the reference.

On CUDA the per-step cost of memnb's small networks is kernel-launch overhead: a training step of a
10-member ensemble is about 80 small kernels (forward, backward, per-member clipping, fused AdamW),
a sampler chunk is T steps of about 15 each. A CUDA graph records those launches once and replays
them with one call (PyTorch's "CUDA semantics" notes, section "CUDA Graphs": whole-network capture,
``optimizer.step()`` captured with ``capturable=True``, static inputs, warm-up on a side stream).

How memnb uses them:

- **Selection** (`use_cuda_graphs`): graphs on a CUDA device unless ``MEMNB_CUDA_GRAPHS=0`` (or an
  explicit ``False``); never on the CPU, where the eager path runs. The switch is not a config field:
  graphed and eager runs compute the same numbers (to float rounding), so a run's name does not change.
- **Randomness stays outside the graph.** Every random number (permutation, timesteps, noise; the
  sampler's x_T and z) is drawn up front by the member's own ``(seed, repeat, stream, epoch)``
  generator exactly as in the eager path, and copied into the graph's static input tensors before
  each replay. A graph that drew from a custom generator would need it registered with the graph
  (its Philox offset then advances per replay) and would draw other numbers than the eager path;
  drawing outside keeps graphed and eager runs on the same random numbers, and the result
  independent of the chunking and of where capture happens.
- **Training** (`GraphedTrainer`): the body of one optimizer step reads only static tensors
  ``x_t (R, B, d)``, ``t (R, B)``, ``noise (R, B, d)`` and accumulates the (R,) loss into a static
  sum. The first `WARMUP_STEPS` steps of the run are real steps run eagerly on a side stream (they
  also create AdamW's state), then the body is captured once for the run's shape (with the
  gradients unallocated, so the captured backward writes them rather than accumulating) and every
  later step is one copy of its inputs and one replay. A loaded checkpoint replaces the optimizer's
  state tensors, so `reset` drops the graph (it is captured again after the next warm-up).
- **Sampling** (`GraphedSampler`): the T-step loop of one chunk (static ``x (R, c, d)`` and
  ``z (T, R, c, d)``) is the body. Per `generate` call and chunk size, the first chunk of that size
  runs eagerly on a side stream (the warm-up does real work), the loop is captured, and the other
  chunks of that size replay it; the last, shorter chunk of a call runs eagerly. The graph is captured
  again at every call because the sampler's prepared weights (`StepNetwork`) are rebuilt from the
  current weights at every evaluated epoch.

With ``graph=False`` both classes run the same bodies over the same static buffers without a graph:
that is what the CPU tests compare with the eager functions (the buffer logic). The CPU tests also
run the graphed sequence (warm-up, capture, replays, reset) with an emulated capture (capture
records without running, a replay runs the body with gradients assigned as the captured backward
does), and the CUDA tests compare the real graphs with eager on the same weights and random numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from .schedule import NoiseSchedule
from .train import clip_grad_norm_per_member, draw_epoch_randomness

ENV = "MEMNB_CUDA_GRAPHS"  # "0": force eager on CUDA; unset or anything else: graphs on CUDA
WARMUP_STEPS = 3  # eager training steps on a side stream before capture (PyTorch's documented example uses 3)


def use_cuda_graphs(device: torch.device | str, requested: bool | None = None) -> bool:
    """Whether to run graphed: only on a CUDA device; `requested` False, or $MEMNB_CUDA_GRAPHS = "0", force eager.

    requested None (the default) follows the environment variable, read at each call; True still
    needs a CUDA device (graphs do not exist on the CPU).
    """
    if torch.device(device).type != "cuda":
        return False
    if requested is not None:
        return bool(requested)
    return os.environ.get(ENV, "1").strip() != "0"


class _Capture:
    """Runs `body` (no arguments, reads and writes only tensors it closes over) eagerly, or captures and replays it.

    graph=False: every call runs `body`. graph=True: `warmup()` runs it eagerly on a side stream,
    `capture()` records it into a `torch.cuda.CUDAGraph`, and calls replay the graph.
    """

    def __init__(self, body: Callable[[], None], graph: bool):
        self.body, self.graph = body, graph
        self.cuda_graph: torch.cuda.CUDAGraph | None = None

    @property
    def captured(self) -> bool:
        return self.cuda_graph is not None

    def warmup(self, before: Callable[[], None] | None = None) -> None:
        if not self.graph:
            if before is not None:
                before()
            self.body()
            return
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            if before is not None:
                before()
            self.body()
        torch.cuda.current_stream().wait_stream(side)

    def capture(self, before: Callable[[], None] | None = None) -> None:
        if not self.graph:
            return
        if before is not None:
            before()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            self.body()
        self.cuda_graph = g

    def __call__(self, before: Callable[[], None] | None = None) -> None:
        if self.cuda_graph is not None:
            self.cuda_graph.replay()
        else:
            if before is not None:
                before()
            self.body()


class GraphedTrainer:
    """memnb.models.train.train_epoch's arithmetic through static buffers, one captured step replayed per batch.

    model: an ensemble denoiser (R members); optimizer: its fused AdamW (made capturable at capture);
    batch shape (R, batch_size, dim) is fixed at construction. graph=False runs the same body eagerly.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: NoiseSchedule,
        n_members: int,
        batch_size: int,
        dim: int,
        grad_clip: float,
        device: torch.device,
        graph: bool,
        capture: type = None,
    ):
        self.model, self.optimizer, self.schedule, self.grad_clip = model, optimizer, schedule, grad_clip
        self.graph = graph
        self.capture_type = _Capture if capture is None else capture  # tests substitute an emulation of capture
        self.params = list(model.parameters())
        self.x_t = torch.zeros(n_members, batch_size, dim, device=device)
        self.t = torch.zeros(n_members, batch_size, dtype=torch.int64, device=device)
        self.noise = torch.zeros(n_members, batch_size, dim, device=device)
        self.loss_sum = torch.zeros(n_members, device=device)
        self.step = self.capture_type(self._body, graph)
        self.warm_steps = 0

    def _body(self) -> None:
        """One optimizer step of every member on the static batch; adds the (R,) losses to loss_sum."""
        pred = self.model(self.x_t, self.t)
        member_loss = (pred - self.noise).pow(2).mean(dim=tuple(range(1, pred.dim())))
        member_loss.sum().backward()
        clip_grad_norm_per_member(self.params, self.grad_clip)
        self.optimizer.step()
        self.loss_sum += member_loss.detach()

    def _zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def reset(self) -> None:
        """Forget the captured graph (after the optimizer's state tensors were replaced, e.g. by a checkpoint)."""
        self.step = self.capture_type(self._body, self.graph)
        self.warm_steps = 0
        self._zero_grad()

    def train_epoch(self, data: torch.Tensor, batch_size: int, generators: list[torch.Generator]) -> torch.Tensor:
        """Same contract as memnb.models.train.train_epoch: data (R, N, d); returns the (R,) mean loss."""
        n_members, n_points, d = data.shape
        perm, t, noise = draw_epoch_randomness(
            n_points, batch_size, self.schedule.num_timesteps, generators, data.device, d
        )
        steps = t.shape[1]
        x0 = torch.gather(data, 1, perm.unsqueeze(-1).expand(-1, -1, d)).view(n_members, steps, batch_size, d)
        x_t = self.schedule.add_noise(x0, noise, t)
        self.loss_sum.zero_()
        for s in range(steps):
            self.x_t.copy_(x_t[:, s])
            self.t.copy_(t[:, s])
            self.noise.copy_(noise[:, s])
            if self.step.captured:
                self.step()  # gradients are overwritten by the captured backward: no zero_grad between replays
            elif self.graph and self.warm_steps < WARMUP_STEPS:
                self.step.warmup(self._zero_grad)
                self.warm_steps += 1
            elif self.graph:
                # optimizer.step() refuses capture unless capturable (fused AdamW's arithmetic does not depend on
                # it; set only now, so the eager warm-up steps do not warn that capturable runs uncaptured)
                for group in self.optimizer.param_groups:
                    group["capturable"] = True
                self._zero_grad()  # captured with unallocated gradients: the graph's backward assigns them
                self.step.capture()
                self.step()
            else:
                self.step(self._zero_grad)
        if not self.graph:
            self._zero_grad()
        return self.loss_sum / max(steps, 1)


class GraphedSampler:
    """memnb.models.sampling's T-step loop for one chunk, through static buffers; captured per chunk size and call.

    net: the sampler's network (`eps_at(x, t)`), coefficients a, b, s: python floats per step
    (schedule.mean_coef_x, mean_coef_eps, posterior_std). graph=False runs the same loop eagerly.
    """

    def __init__(self, net, coefs: tuple[list[float], list[float], list[float]], graph: bool, capture: type = None):
        self.net, self.coefs, self.graph = net, coefs, graph
        self.capture_type = _Capture if capture is None else capture
        self.captures: dict[int, tuple[_Capture, torch.Tensor, torch.Tensor]] = {}

    def _loop(self, x: torch.Tensor, z: torch.Tensor) -> None:
        a, b, s = self.coefs
        for t in reversed(range(len(a))):
            eps = self.net.eps_at(x, t)
            x.mul_(a[t]).sub_(eps, alpha=b[t])
            if t > 0:
                x.add_(z[t], alpha=s[t])

    def run(self, x_T: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x_T (R, c, d) and z (T, R, c, d) of one chunk -> x_0 (R, c, d) (a view of a static buffer: copy it out)."""
        c = x_T.shape[1]
        if c not in self.captures:
            x, zs = x_T.clone(), z.clone()
            cap = self.capture_type(lambda: self._loop(x, zs), self.graph)
            self.captures[c] = (cap, x, zs)
            cap.warmup()  # real work: this chunk's samples
            if self.graph:
                out = x.clone()
                x.copy_(x_T)
                cap.capture()  # records only; x keeps x_T until the next replay
                return out
            return x
        cap, x, zs = self.captures[c]
        x.copy_(x_T)
        zs.copy_(z)
        cap()
        return x
