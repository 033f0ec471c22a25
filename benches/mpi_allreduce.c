/* The peer of train/examples/allreduce.rs: MPI's own blocking MPI_Allreduce (f32 sum) of
 * the same sizes, best and median of 5, and the bus bandwidth of the best (2 (N-1)/N of
 * the bytes). Dev-only; docs/SCALING.md records both in one run.
 *
 *   mpicc -O2 benches/mpi_allreduce.c -o /tmp/mpi_allreduce
 *   mpirun -np 2 --oversubscribe --bind-to none /tmp/mpi_allreduce 1 9.3 64 256
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank == 0) printf("| MiB | best ms | median ms | bus GB/s (best) |\n|---:|---:|---:|---:|\n");
    for (int s = 1; s < argc; s++) {
        double mib = atof(argv[s]);
        int n = (int)(mib * 1048576 / 4);
        float *send = malloc((size_t)n * 4), *recv = malloc((size_t)n * 4);
        for (int i = 0; i < n; i++) send[i] = (float)rank;
        double t[5];
        for (int r = 0; r < 5; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double start = MPI_Wtime();
            MPI_Allreduce(send, recv, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            t[r] = MPI_Wtime() - start;
        }
        qsort(t, 5, sizeof t[0], by_value);
        double bus = 2.0 * (size - 1) / size * n * 4.0 / t[0] / 1e9;
        if (rank == 0) printf("| %g | %.2f | %.2f | %.2f |\n", mib, t[0] * 1e3, t[2] * 1e3, bus);
        free(send);
        free(recv);
    }
    MPI_Finalize();
    return 0;
}
