"""PyTorch master + worker for scripts/gpu-check, wired only by trainctl's env (MASTER_ADDR,
MASTER_PORT, WORLD_SIZE, RANK): gloo, so both processes may share one GPU. Prints each rank's
view and the all-reduced parameters' checksum, which must agree across ranks."""
import os

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
dev = torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
print(f"rank={rank} world={world} master={os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} "
      f"device={dev} visible={os.environ.get('CUDA_VISIBLE_DEVICES')}", flush=True)
torch.manual_seed(rank)
model = torch.nn.Linear(64, 1).to(dev)
ddp = torch.nn.parallel.DistributedDataParallel(model)
opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
for step in range(50):
    x = torch.randn(32, 64, device=dev)
    loss = ddp(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
checksum = sum(p.detach().sum().item() for p in model.parameters())
print(f"rank={rank} loss={loss.item():.5f} checksum={checksum:.6f}", flush=True)
dist.destroy_process_group()
