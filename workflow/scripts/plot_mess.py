"""Snakemake adapter of rule plot_mess: MESS itineraries and positions on the feeder."""

from feederflex import plots
from feederflex.io import read_dataset
from feederflex.logs import configure


def main(solution: str, network: str, step: int, itinerary: str, positions: str, log_file: str | None = None) -> None:
    configure(log_file)
    sol = read_dataset(solution)
    plots.save(plots.mess_itinerary(sol), itinerary)
    plots.save(plots.mess_positions(sol, read_dataset(network), min(step, sol.sizes["time"] - 1)), positions)


if __name__ == "__main__":
    main(
        snakemake.input.solution,
        snakemake.input.network,
        snakemake.params.step,
        snakemake.output.itinerary,
        snakemake.output.positions,
        snakemake.log[0],
    )
