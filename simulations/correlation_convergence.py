"""Figure 4: |c^l − c*| against l in the three phases (tanh, σ_b = 0.3), with the EOC rate β/l."""

import time

from meanfield.theory import convergence_table

from ._common import finish, output, parse


def main(argv=None):
    args = parse(__doc__, argv)
    t0 = time.perf_counter()
    df = convergence_table("tanh", 0.3, (0.8, None, 3.0), depth=1000 if args.quick else 20000)
    df.insert(0, "activation", "tanh")
    finish(df, output(args, "correlation_convergence"), t0)


if __name__ == "__main__":
    main()
