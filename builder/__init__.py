"""builder: VM image build pipeline for AI workloads on Azure IaaS."""

__version__ = "0.1.0"
