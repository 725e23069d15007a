#!/usr/bin/env python3
"""Flower's own FedAvg over gRPC at N sites x P float32 parameters, no
training: the side-by-side for `fedmi bench round` (bench/flower_compare.md).

Not a fedmi dependency: it needs `pip install flwr==1.10.*` in a virtual
environment of your own. Prints one JSON object as its last line:
  {"sites", "params", "rounds", "round_seconds": [...],
   "median_round_seconds", "server_peak_rss_bytes", "client_peak_rss_bytes"}

Each client returns the global parameters plus a constant of its own, as
fedmi's synthetic sites do; the server is Flower's FedAvg with every client
in every round and evaluation off, plaintext gRPC on loopback.
"""
import argparse
import json
import multiprocessing
import resource
import statistics
import sys
import time


def run_client(address, index, params):
    import flwr as fl
    import numpy as np

    class SyntheticClient(fl.client.NumPyClient):
        def get_parameters(self, config):
            return [np.zeros(params, dtype=np.float32)]

        def fit(self, parameters, config):
            return [parameters[0] + np.float32(0.25 * index)], 100 * index, {}

        def evaluate(self, parameters, config):
            return 0.0, 1, {}

    fl.client.start_client(server_address=address, client=SyntheticClient().to_client())
    # This client's peak RSS, for the parent to collect.
    print(json.dumps({"client_peak_rss_bytes":
                      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--params", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=18080)
    args = parser.parse_args()

    import flwr as fl

    round_ends = []

    class TimedFedAvg(fl.server.strategy.FedAvg):
        def aggregate_fit(self, server_round, results, failures):
            aggregated = super().aggregate_fit(server_round, results, failures)
            round_ends.append(time.perf_counter())
            return aggregated

    address = f"127.0.0.1:{args.port}"
    clients = [multiprocessing.Process(target=run_client, args=(address, k + 1, args.params))
               for k in range(args.sites)]
    for client in clients:
        client.start()
    strategy = TimedFedAvg(fraction_fit=1.0, fraction_evaluate=0.0,
                           min_fit_clients=args.sites, min_available_clients=args.sites)
    started = time.perf_counter()
    fl.server.start_server(server_address=address,
                           config=fl.server.ServerConfig(num_rounds=args.rounds),
                           strategy=strategy,
                           grpc_max_message_length=2 * 1024 ** 3 - 1)
    for client in clients:
        client.join()
    starts = [started] + round_ends[:-1]
    # The first round includes the clients' connection; fedmi's bench times
    # rounds from round.opened to round.evaluated, so compare medians.
    seconds = [end - start for start, end in zip(starts, round_ends)]
    print(json.dumps({
        "sites": args.sites, "params": args.params, "rounds": args.rounds,
        "round_seconds": seconds,
        "median_round_seconds": statistics.median(seconds) if seconds else None,
        "server_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    sys.exit(main())
