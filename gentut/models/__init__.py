"""The model families of the course; each holds its networks and its training step."""

from .base import Adversarial, Generative, Trainable
from .classifier import Classifier
from .dcgan import DCGAN
from .diffusion import DDPM, Guided
from .flow import RealNVP
from .flowmatch import FlowMatching
from .gan import GAN
from .infogan import InfoGAN
from .stylegan import StyleGAN
from .unet import UNet
from .vae import VAE, Autoencoder

__all__ = ["Adversarial", "Autoencoder", "Classifier", "DCGAN", "DDPM", "FlowMatching", "GAN",
           "Generative", "Guided", "InfoGAN", "RealNVP", "StyleGAN", "Trainable", "UNet", "VAE"]
