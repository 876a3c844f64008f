"""Answer forms that benchmarks/tasks_check.py feeds each task's checker: per-row equivalent and wrong
forms for the math500 sample, the ``\\boxed{}`` endings chat models write (read by the "####" tasks
too), and garbage texts with no (or a nonsensical) final answer."""

from __future__ import annotations

# Per-row answer forms for math500, by unique_id: (equivalent forms that must be accepted, wrong forms
# that must be rejected). Every row of the sample file has an entry; rows of other files get only the
# generic checks.
MATH500_FORMS: dict[str, tuple[list[str], list[str]]] = {
    "test/precalculus/807.json": (
        [r"(3,\frac{\pi}{2})", r"(3, \pi/2)", r"\left(3,\dfrac{\pi}{2}\right)"],
        [r"(3,\pi)", r"(\frac{\pi}{2}, 3)", "(3, 1.5708)", "3"],
    ),
    "test/algebra/2584.json": (
        [r"\dfrac{14}{3}", "14/3", r"4\frac{2}{3}", r"\frac{28}{6}"],
        [r"\frac{13}{3}", "4.6667", r"\frac{3}{14}"],
    ),
    "test/counting_and_probability/1041.json": (
        ["0.5", r"\dfrac{1}{2}", r"\frac12", "1/2", ".5", r"\tfrac{1}{2}", r"50\%"],
        [r"\frac{1}{3}", r"\frac{1}{4}", "2", "0.49"],
    ),
    "test/counting_and_probability/1072.json": (
        [r"\frac{5}{36}", "5/36", r"\frac{10}{72}", r"\dfrac5{36}"],
        [r"\frac{1}{6}", r"\frac{5}{35}", r"\frac{36}{5}"],
    ),
    "test/precalculus/1130.json": (
        [r"\frac{1}{\sqrt{2}}", r"\sqrt{2}/2", r"\frac{\sqrt2}{2}", r"\dfrac{\sqrt{2}}{2}"],
        [r"-\frac{\sqrt{2}}{2}", r"\frac{\sqrt{3}}{2}", r"\sqrt{2}", r"\frac{1}{2}"],
    ),
    "test/algebra/1508.json": (
        [r"(-\infty,3]", r"\left(-\infty, 3\right]", r"(-\infty, 3.0]"],
        [r"(-\infty, 3)", r"[3, \infty)", r"(-\infty, 3.5]", r"(-\infty, -3]"],
    ),
    "test/prealgebra/1624.json": (
        ["120", r"120^{\circ}", "120°", "120.0"],
        [r"60^\circ", r"720^\circ", r"108^\circ"],
    ),
    "test/prealgebra/1790.json": (
        ["(C)", "C", r"\textbf{(C)}", r"\text{C}"],
        [r"\text{(A)}", "(E)", "B"],
    ),
    "test/prealgebra/1863.json": (
        [r"\frac{1}{2}", ".5", "0.50", r"\frac{3}{6}"],
        ["0.25", r"0.4\overline{9}9", "5", r"0.\overline{5}"],
    ),
    "test/algebra/1947.json": (
        ["-7.0", "- 7", "{-7}"],
        ["7", "-6", "-10"],
    ),
    "test/algebra/2036.json": (
        ["-1.5", r"\frac{-3}{2}", r"-\dfrac32", "-3/2"],
        [r"\frac{3}{2}", r"-\frac{2}{3}", r"-\frac{3}{4}"],
    ),
    "test/geometry/1109.json": (
        [r"36 \pi", r"\pi \cdot 36", r"36\cdot\pi", r"36{\pi}"],
        [r"12\pi", "36", r"6\pi", r"72\pi"],
    ),
    "test/precalculus/1199.json": (
        [r"\pi/3", r"\dfrac{\pi}{3}", r"\frac{1}{3}\pi"],
        [r"\frac{\pi}{6}", "60", r"\frac{2\pi}{3}"],
    ),
    "test/prealgebra/1302.json": (
        [r"11\sqrt{2}", r"\sqrt{242}", r"11 \sqrt 2"],
        [r"11\sqrt{3}", "11", r"\sqrt{11}"],
    ),
    "test/algebra/2211.json": (
        ["3, -3", "-3,3", r"\pm 3", r"\{-3, 3\}"],
        ["3", "-3", "-3, 2", "9, -9"],
    ),
    "test/algebra/1411.json": (
        ["26,000", "26{,}000", r"26,\!000", "26000.0"],
        ["26001", "2600", "260000"],
    ),
    "test/number_theory/1256.json": (
        ["6000", "6,000", "6{,}000"],
        ["600", "60000", "240"],
    ),
    "test/precalculus/1322.json": (
        [r"\begin{pmatrix}1\\-1\end{pmatrix}", r"\begin{pmatrix} 1 \\ -1.0 \end{pmatrix}"],
        [r"\begin{pmatrix} -1 \\ 1 \end{pmatrix}", r"\begin{pmatrix} 1 \\ 1 \end{pmatrix}",
         r"\begin{pmatrix} 5 \\ -1 \end{pmatrix}"],
    ),
    "test/algebra/1737.json": (
        ["2x^2+5x-12", "-12 + 5x + 2x^2", "2 x^{2} + 5 x - 12"],
        ["2x^2 + 5x + 12", "2x^2 - 5x - 12", "2x^2 + 11x - 12"],
    ),
    "test/number_theory/1420.json": (
        ["11001_{2}", "11001"],
        ["10011_2", "11011_2", "25"],
    ),
    "test/algebra/1862.json": (
        ["y=2x+3", "2x+3", "y = 3 + 2x"],
        ["y = 2x - 3", "y = 3x + 2", "y = 2x"],
    ),
    "test/algebra/2318.json": (
        [r"(-\infty, -2) \cup (-2, 2) \cup (2, \infty)", r"\mathbb{R}\setminus\{-2,2\}"],
        [r"(-\infty,-2)\cup(2,\infty)", r"(-\infty,2)\cup(2,\infty)", r"(-\infty,\infty)", "(-2,2)"],
    ),
    "test/prealgebra/1688.json": (
        ["18.90", "18.9", r"\$18.9", r"\$ 18.90"],
        [r"\$19.80", "18.09", r"\$13.50"],
    ),
    "test/intermediate_algebra/1576.json": (
        ["odd", r"\text{ odd }", r"\mathrm{odd}", r"\textbf{odd}"],
        [r"\text{even}", "even", r"\text{neither}"],
    ),
    "test/intermediate_algebra/1208.json": (
        ["5 + 5i", "5i+5", "5+5 i"],
        ["5-5i", "5+i", "1+7i"],
    ),
    "test/intermediate_algebra/1994.json": (
        ["p-q", "-q+p", "p + (-q)"],
        ["q - p", "p + q", "p"],
    ),
    "test/prealgebra/1511.json": (
        ["25", r"25 \%", r"25.0\%"],
        [r"20\%", "4", r"40\%"],
    ),
    "test/geometry/1288.json": (
        [r"\frac{3}{2}\sqrt{3}", r"1.5\sqrt{3}", r"\frac{3\sqrt3}{2}", r"\dfrac{3\sqrt{3}}{2}"],
        [r"\frac{\sqrt{3}}{2}", r"\frac{3\sqrt{2}}{2}", r"3\sqrt{3}", r"\frac{9}{4}"],
    ),
    "test/number_theory/1147.json": (
        ["2.0", "{2}"],
        ["1", "4", "3"],
    ),
}

#: final steps as chat models write them ("{}" is the answer): the "####" tasks must read these too
BOXED_ENDINGS = ["\\boxed{{{}}}", "$\\boxed{{{}}}$.", "Therefore, the final answer is $\\boxed{{{}}}$.",
                 "The answer is \\boxed{{{}}}"]

#: texts with no parsable final answer, for tasks whose answers follow "####"
HASH_GARBAGE = ["", "I don't know.", "The answer is 72.", "####", "#### \n72", "#### seventy-two", "#### 72 clips",
                "#### 1e3", "#### NaN", "#### --5", "#### 7 2", "#### $", "\x00" * 5, "#### " + "9" * 10 + "x",
                "####" * 500]
#: texts with no parsable final answer, for boxed answers
BOXED_GARBAGE = ["", "the probability is one half", r"\boxed{", r"\boxed{}", r"\boxed{ }", r"\boxed",
                 r"\boxed{1} and then \boxed{", "$$$", "\x00" * 5, "}" * 50 + r"\boxed{{{", r"\boxed{\frac{1}{2}"]
#: texts that do have a final answer, but a nonsensical one: is_correct must be False and must not raise
BOXED_NONSENSE = ["\\boxed{\\frac{1}{0}}", "\\boxed{\\text{}}", "\\boxed{}}}{{}", "\\boxed{\\sqrt{}}", "\\boxed{(((}",
                  "\\boxed{\\begin{pmatrix}}", "\\boxed{" + "(" * 200 + "}"]
