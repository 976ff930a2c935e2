"""One training epoch of the ensemble: tiny-diffusion's recipe, batched over repeats.

Per member and epoch: shuffle, batches of `batch_size` (last partial batch dropped),
t ~ U{0..T-1}, eps ~ N(0, I), loss = mean (eps_theta(x_t, t) - eps)^2, gradient norm clipped
per member, AdamW. Each member's random numbers come from its own (seed, repeat, epoch)
generator, and the members' losses are summed, so each member's gradient and AdamW update are
exactly those it would get training alone.
"""

from __future__ import annotations

import torch

from .schedule import NoiseSchedule


def make_optimizer(model: torch.nn.Module, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    # AdamW is elementwise, so one optimizer over stacked weights updates members independently.
    # fused=True: one vectorised pass over all parameters per step (CPU and CUDA), same update rule.
    return torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay, fused=True)


def draw_epoch_randomness(
    n_points: int,
    batch_size: int,
    num_timesteps: int,
    generators: list[torch.Generator],
    device: torch.device,
    dim: int = 2,
):
    """Per member: permutation, timesteps and noise for one epoch (points of dimension `dim`).

    Returns perm (R, S*B) int64, t (R, S, B) int64, noise (R, S, B, dim), with S = n_points // batch_size.
    """
    steps = n_points // batch_size
    perms, ts, noises = [], [], []
    for g in generators:
        perms.append(torch.randperm(n_points, generator=g, device=g.device)[: steps * batch_size])
        ts.append(torch.randint(0, num_timesteps, (steps, batch_size), generator=g, device=g.device))
        noises.append(torch.randn(steps, batch_size, dim, generator=g, device=g.device))
    return torch.stack(perms).to(device), torch.stack(ts).to(device), torch.stack(noises).to(device)


@torch.no_grad()
def clip_grad_norm_per_member(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """torch.nn.utils.clip_grad_norm_ applied to each member separately; returns the (R,) pre-clip norms.

    Same rule as torch: scale = min(1, max_norm / (norm + 1e-6)).
    """
    per_param = torch.stack([torch.linalg.vector_norm(p.grad.flatten(1), dim=1) for p in params])  # (P, R)
    norms = torch.linalg.vector_norm(per_param, dim=0)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(scale.view(-1, *([1] * (p.grad.dim() - 1))))
    return norms


def train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: NoiseSchedule,
    data: torch.Tensor,
    batch_size: int,
    grad_clip: float,
    generators: list[torch.Generator],
) -> torch.Tensor:
    """Train every member one epoch on its own data. data (R, N, d). Returns the (R,) mean loss per member."""
    n_members, n_points, d = data.shape
    perm, t, noise = draw_epoch_randomness(n_points, batch_size, schedule.num_timesteps, generators, data.device, d)
    steps = t.shape[1]
    x0 = torch.gather(data, 1, perm.unsqueeze(-1).expand(-1, -1, d)).view(n_members, steps, batch_size, d)
    x_t = schedule.add_noise(x0, noise, t)  # eq. (4), for the whole epoch at once
    params = list(model.parameters())
    loss_sum = torch.zeros(n_members, device=data.device)
    for s in range(steps):
        pred = model(x_t[:, s], t[:, s])
        member_loss = (pred - noise[:, s]).pow(2).mean(dim=tuple(range(1, pred.dim())))  # (R,) MSE of eps-prediction
        member_loss.sum().backward()  # summing keeps each member's gradient its own
        clip_grad_norm_per_member(params, grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += member_loss.detach()
    return loss_sum / max(steps, 1)
