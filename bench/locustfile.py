"""Locust users for bench/load.py: a chat user asking mixed English and Russian questions about the seed article."""

from __future__ import annotations

import random

from locust import HttpUser, between, task

QUESTIONS = [
    "who commands US troops in Japan?",
    "What did Japan decide about arms exports?",
    "When did the defence ministers meet?",
    "What threat did both sides name as the greatest strategic challenge?",
    "кто командует американскими войсками в Японии?",
    "Что Япония сделала с ограничениями на экспорт оружия?",
    "Сколько американских военнослужащих размещено в Японии?",
    "С кем встретился министр обороны Японии Кихара?",
]


class ChatUser(HttpUser):
    wait_time = between(0.5, 1.5)  # a person reading the answer before the next question

    @task(10)
    def ask(self) -> None:
        question = random.choice(QUESTIONS)
        with self.client.post("/ask", json={"question": question}, name="/ask", catch_response=True) as response:
            if response.status_code != 200 or not response.json().get("citations"):
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(1)
    def read_document(self) -> None:
        self.client.get("/documents/us-japan-security-talks.txt", name="/documents/{id}")
