"""The evaluation classifier: a small CNN whose features and predictions the metrics use.

It is a discriminative model, p(y|x), trained on the real training set; FID is measured in
its 128-dimensional feature space, the Inception Score and class coverage from its labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Trainable, adam

LR = 1e-3
FEATURES = 128


class Classifier(Trainable):
    """conv 32 -> pool -> conv 64 -> pool -> 128 features -> 10 logits."""

    batch_size = 128
    num_features = FEATURES  # read by torchmetrics' FID

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),                                       # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),                                       # (B, 64, 7, 7)
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, FEATURES), nn.ReLU(inplace=True),  # (B, 128)
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURES, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for images x in [0, 1]."""
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Class probabilities p(y|x) for images in [0, 1], in eval mode, batch by batch."""
        was_training = self.training
        self.eval()
        dev = next(self.parameters()).device
        probs = [F.softmax(self(b.to(dev)), 1).cpu() for b in x.split(batch_size)]
        self.train(was_training)
        return torch.cat(probs)

    def accuracy(self, x: torch.Tensor, labels: torch.Tensor) -> float:
        """The fraction of images whose most probable class is their label."""
        return (self.predict(x).argmax(1) == labels.cpu()).float().mean().item()

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.parameters(), LR)}

    def step(self, x, y, opt):
        """Minimize the cross-entropy of the true labels."""
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        opt["model"].zero_grad(set_to_none=True)
        loss.backward()
        opt["model"].step()
        return {"loss": loss.detach(), "accuracy": (logits.argmax(1) == y).float().mean()}
