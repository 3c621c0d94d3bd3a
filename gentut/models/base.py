"""What every model family gives the shared training loop, and the one sampling call."""

from __future__ import annotations

import torch
from torch import nn


def adam(params, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam with its fused kernel: the same update, one kernel for all parameters."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)


class Trainable(nn.Module):
    """A model the loop in `gentut.train` can train: its optimizers and its step.

    A family sets `value_range` (the pixel range its data must have), `batch_size` (from its
    source), and implements `optimizers()` and `step()`: the algorithm of its chapter.
    """

    value_range: tuple[float, float] = (0.0, 1.0)
    batch_size: int = 100
    image_shape: tuple[int, int, int] = (1, 28, 28)  # channels, height, width of one image

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse a batch whose images are not `image_shape`, in one line that says what fits
        (rather than a matrix-shape error from deep inside the first layer)."""
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"{type(self).__name__} takes images of shape {self.image_shape} "
                             f"(a batch is N x {' x '.join(map(str, self.image_shape))}), "
                             f"got {tuple(x.shape[1:])}: use 28 x 28 grayscale images "
                             "such as gentut.data.load's")

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers `step` uses, by name, with the hyperparameters its sources give."""
        raise NotImplementedError

    def step(self, x: torch.Tensor, y: torch.Tensor,
             opt: dict[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        """One training iteration on a batch; returns every loss term, detached."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class Generative(Trainable):
    """A trainable model that draws images from a prior: `sample` is the same for all."""

    def prior(self, n: int, generator: torch.Generator | None = None, **codes) -> torch.Tensor:
        """n latent vectors drawn from the model's prior (on the CPU, for reproducibility)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in `value_range` for latent vectors z."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, **codes) -> torch.Tensor:
        """n images (n,1,28,28) in [0,1]; the same seed gives the same images on any device."""
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        z = self.prior(n, generator, **codes).to(self.device)
        was_training = self.training
        self.eval()
        try:
            x = self.decode(z).float()
        finally:
            self.train(was_training)
        return self.to_unit(x)

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Images in the model's `value_range` (tanh's [-1, 1], say) rescaled to [0, 1]."""
        lo, hi = self.value_range
        return ((x - lo) / (hi - lo)).clamp(0, 1)


class Adversarial(Generative):
    """A generative model with a discriminator: `self.D(x)` returns one logit per image."""

    @torch.no_grad()
    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """D(x), the probability that x is real (the losses themselves work on logits)."""
        return torch.sigmoid(self.D(x))
