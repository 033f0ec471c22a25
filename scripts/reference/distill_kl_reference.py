#!/usr/bin/env python3
"""Dev-only: the expected values of train/tests/distill/loss.rs's hand-worked example.

The top-k distillation loss from its definition (train/src/distill/loss.rs), in numpy
float64, independent of Lamina: both distributions at temperature tau, coarsened to the
teacher's k ids plus "any other token", then KL, scaled by tau^2, plus the weighted
cross-entropy at temperature 1. Prints the numbers the test pins.
"""
import numpy as np


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


# One scored position, vocabulary of 4, k = 2, tau = 2.
tau = 2.0
student_logits = np.array([1.0, 0.0, -1.0, 2.0])
teacher_probs = np.array([0.5, 0.1, 0.1, 0.3])  # the teacher's distribution at tau
top = [0, 3]  # its two most likely ids, most likely first
label = 3

p_top = teacher_probs[top]
p_rest = 1.0 - p_top.sum()
q = np.exp(log_softmax(student_logits / tau))
q_top = q[top]
q_rest = 1.0 - q_top.sum()

forward = (p_top * np.log(p_top / q_top)).sum() + p_rest * np.log(p_rest / q_rest)
reverse = (q_top * np.log(q_top / p_top)).sum() + q_rest * np.log(q_rest / p_rest)
ce = -log_softmax(student_logits)[label]

print(f"student probabilities at tau: {q}")
print(f"forward KL over k+1 outcomes: {forward:.12f}")
print(f"reverse KL over k+1 outcomes: {reverse:.12f}")
print(f"cross-entropy at tau 1:       {ce:.12f}")
print(f"0.7 * tau^2 * forward + 0.3 * ce = {0.7 * tau**2 * forward + 0.3 * ce:.12f}")
print(f"tau^2 * reverse                  = {tau**2 * reverse:.12f}")
