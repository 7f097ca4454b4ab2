"""InfoGAN training step: D+Q's optimiser (shared body, real/fake head, Q head) and G's.

As in Chen et al. 2016, Q is D's network with its own last layer, and the MI lower bound L_I is
maximised over both G and Q: the discriminator step minimises ``L_D - lambda_mi * L_I`` (L_I on
the detached fakes of the same forward pass) over the body and both heads, so the shared body
learns features that recover the codes; the generator step minimises L_G over G alone. Adam with
betas (0.5, 0.999); D and Q at 2e-4, G at the trial's ``lr``.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from disentune.models.base import Hyper
from disentune.models.infogan.losses import (
    discriminator_loss,
    generator_loss,
    info_lower_bound,
    q_posterior_tc,
)


class InfoGANStep:
    def __init__(self, model: nn.Module, hyper: Hyper) -> None:
        self.model, self.hyper = model, hyper
        inner = getattr(model, "module", model)
        self.inner = inner
        disc = inner.discriminator
        self.d_opt = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.g_opt = torch.optim.Adam(inner.generator.parameters(), lr=hyper.lr, betas=(0.5, 0.999))

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        noise, cat, cont = self.inner.sample_codes(x.shape[0], generator)
        fake = torch.sigmoid(self.model("generate", noise, self.inner.codes(cat, cont)))

        real_logits = self.model("discriminate", x)[0]
        fake_logits, *q_detached = self.model("discriminate", fake.detach())
        d_loss = discriminator_loss(real_logits, fake_logits)
        # D and Q: L_D - lambda_mi * L_I, with L_I on the detached fakes (G is not stepped here)
        q_info = info_lower_bound(*q_detached, cat, cont)["mi"] if self.hyper.lambda_mi > 0 else 0.0
        self.d_opt.zero_grad(set_to_none=True)
        (d_loss - self.hyper.lambda_mi * q_info).backward()
        self.d_opt.step()

        fake_logits, q_cat, q_mu, q_logvar = self.model("discriminate", fake)
        info = info_lower_bound(q_cat, q_mu, q_logvar, cat, cont)
        tc = q_posterior_tc(q_mu, q_logvar, generator) if self.hyper.lambda_tc > 0 else q_mu.new_zeros(())
        terms = generator_loss(fake_logits, info, tc, lambda_mi=self.hyper.lambda_mi,
                               lambda_tc=self.hyper.lambda_tc)
        self.g_opt.zero_grad(set_to_none=True)
        terms["gen_total"].backward()  # also leaves gradients on D and Q, cleared before D's next step
        self.g_opt.step()
        out = {k: float(v.detach()) for k, v in terms.items()}
        out.update(disc=float(d_loss.detach()), total=float(d_loss.detach()) + out["gen_total"])
        return out

    def state_dict(self) -> dict:
        return {"d": self.d_opt.state_dict(), "g": self.g_opt.state_dict()}

    def load_state_dict(self, state: Mapping) -> None:
        self.d_opt.load_state_dict(state["d"])
        self.g_opt.load_state_dict(state["g"])
