"""One-GPU PyTorch training for scripts/gpu-check: a small MLP on generated data, long enough
(--seconds) for `trainctl top` and the resource history to see the GPU busy."""
import argparse
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--seconds", type=float, default=40)
a = p.parse_args()
dev = torch.device("cuda:0")
torch.manual_seed(0)
x = torch.randn(65536, 1024, device=dev)
w_true = torch.randn(1024, 1, device=dev)
y = x @ w_true + 0.01 * torch.randn(65536, 1, device=dev)
model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 1)).to(dev)
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
start, step = time.time(), 0
while time.time() - start < a.seconds:
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    step += 1
    if step % 50 == 0:
        print(f"step={step} loss={loss.item():.5f}", flush=True)
print(f"done steps={step} loss={loss.item():.5f}", flush=True)
