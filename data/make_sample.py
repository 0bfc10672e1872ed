"""Write the demo dataset (train.jsonl, valid.jsonl) about SC Farense: pure stdlib, deterministic.

Each fact has one assistant answer and a few question frames; frames holding a club
placeholder are expanded with three names of the club, giving 6-10 paraphrases per fact.
Whole facts go to one side of the split, so no answer is in both files.

    .venv/bin/python data/make_sample.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SYSTEM = (
    "És um assistente que responde a perguntas sobre a história "
    "do Sporting Clube Farense em português europeu."
)
SEED = 1910
VALID_FRACTION = 0.15
HERE = Path(__file__).resolve().parent

# The three ways of naming the club, each with the contracted forms Portuguese needs.
NAMES = [
    {"o": "o Farense", "O": "O Farense", "do": "do Farense", "pelo": "pelo Farense"},
    {
        "o": "o Sporting Clube Farense",
        "O": "O Sporting Clube Farense",
        "do": "do Sporting Clube Farense",
        "pelo": "pelo Sporting Clube Farense",
    },
    {"o": "o SC Farense", "O": "O SC Farense", "do": "do SC Farense", "pelo": "pelo SC Farense"},
]

# (answer, question frames, held-out questions). Only facts we are confident of; see README.md.
# The held-out questions are other wordings, never trained on: test.jsonl asks those of the
# training facts, as a user would after training (the validation facts are held out whole).
FACTS = [
    ("O Sporting Clube Farense foi fundado a 1 de abril de 1910.",
     ["Quando foi fundado {o}?", "Em que ano nasceu {o}?", "Qual é a data de fundação {do}?"],
     ["Em que data se fundou o Farense?", "Qual é o ano de fundação do Farense?"]),
    ("O Farense foi fundado na cidade de Faro, no Algarve.",
     ["Em que cidade foi fundado {o}?", "De que cidade é {o}?",
      "Onde nasceu o clube de futebol Farense?", "Qual é a terra natal do Farense?"],
     ["Qual é a cidade de origem do Farense?", "Em que cidade do Algarve foi criado o Farense?"]),
    ("O nome completo do clube é Sporting Clube Farense.",
     ["Qual é o nome completo do Farense?", "Como se chama oficialmente o Farense?",
      "O que significa a sigla SC no nome do SC Farense?",
      "Qual é o nome oficial do clube de Faro conhecido como Farense?",
      "Farense é a forma curta de que nome?", "Qual é a designação completa do clube Farense?",
      "Como se escreve por extenso o nome do SC Farense?"],
     ["Qual é o nome por extenso do Farense?", "Que nome completo tem o clube Farense?"]),
    ("O Farense é conhecido como «Leões de Faro» ou simplesmente «os Leões».",
     ["Qual é a alcunha {do}?", "Por que nome é conhecido {o}?",
      "Que animal está na alcunha do Farense?"],
     ["Como são chamados os jogadores do Farense?", "Que alcunha tem o clube de Faro?"]),
    ("As cores do Farense são o preto e o branco.",
     ["Quais são as cores {do}?", "De que cores se equipa {o}?",
      "Que cores tem a camisola do Farense?", "O Farense joga de que cores?"],
     ["Que cores usa o Farense?", "Qual é a cor da camisola do Sporting Clube Farense?"]),
    ("O estádio histórico do Farense é o Estádio de São Luís, em Faro.",
     ["Qual é o estádio histórico {do}?", "Onde joga tradicionalmente {o}?",
      "Como se chama o estádio tradicional do Farense em Faro?",
      "Em que estádio de Faro jogou o Farense durante grande parte da sua história?"],
     ["Qual é o estádio tradicional do SC Farense?", "Em que estádio jogou o Farense durante décadas?"]),
    ("Além do Estádio de São Luís, o Farense também jogou no Estádio Algarve.",
     ["Que outro estádio, além do São Luís, foi usado {pelo}?",
      "O Farense também jogou no Estádio Algarve?",
      "Em que estádio moderno do Algarve jogou o Farense?",
      "Que estádios usou o Farense ao longo da sua história?",
      "Para além do Estádio de São Luís, onde jogou o Farense?"],
     ["Que outro estádio usou o Farense além do São Luís?",
      "O Farense jogou em que estádio além do São Luís?"]),
    ("O Estádio Algarve foi construído para o Campeonato da Europa de 2004, organizado por Portugal.",
     ["Para que competição foi construído o Estádio Algarve?",
      "Porque foi construído o Estádio Algarve?", "O Estádio Algarve foi feito para que torneio?",
      "Que grande competição levou à construção do Estádio Algarve?",
      "O Estádio Algarve recebeu o Euro 2004?", "Em que contexto nasceu o Estádio Algarve?",
      "Qual foi o motivo da construção do Estádio Algarve?"],
     ["Para que torneio se construiu o Estádio Algarve?", "Porque existe o Estádio Algarve?"]),
    ("O Estádio Algarve fica entre Faro e Loulé e foi inaugurado em 2004.",
     ["Onde fica o Estádio Algarve?", "Quando foi inaugurado o Estádio Algarve?",
      "Entre que cidades se situa o Estádio Algarve?", "Em que ano abriu o Estádio Algarve?",
      "Qual é a localização do Estádio Algarve?", "O Estádio Algarve fica em Faro ou em Loulé?",
      "Quando abriu as portas o Estádio Algarve?"],
     ["Entre que cidades fica o Estádio Algarve?", "Quando abriu o Estádio Algarve?"]),
    ("Faro, a cidade do Farense, é a capital do Algarve, no sul de Portugal.",
     ["Onde fica Faro, a cidade {do}?", "Em que região de Portugal está sediado {o}?",
      "Faro é a capital de que região?", "Em que parte de Portugal fica a cidade do Farense?"],
     ["Faro é a capital de que região de Portugal?", "Em que região fica a cidade de Faro?"]),
    ("O Farense completou cem anos em 2010.",
     ["Quando fez cem anos {o}?", "Em que ano foi o centenário {do}?",
      "Em que ano celebrou o Farense o seu centenário?"],
     ["Quando celebrou o Farense os cem anos?", "Em que ano fez o Farense um século?"]),
    ("O Farense nasceu em 1910, o mesmo ano em que foi implantada a República em Portugal.",
     ["Que acontecimento da história de Portugal coincidiu com o ano de fundação {do}?",
      "{O} foi fundado no mesmo ano da implantação da República?",
      "O Farense é tão antigo como a República Portuguesa?"],
     ["O que aconteceu em Portugal no ano em que nasceu o Farense?",
      "O Farense nasceu no ano da República?"]),
    ("A melhor classificação do Farense na Primeira Liga é o 5.º lugar, alcançado na época 1994–95.",
     ["Qual foi a melhor classificação {do} na Primeira Liga?",
      "Qual é o melhor resultado de sempre {do} no campeonato?",
      "Em que época fez o Farense a sua melhor classificação?",
      "Em que lugar ficou o Farense em 1994–95?"],
     ["Qual foi a melhor posição do Farense no campeonato?",
      "Qual é o melhor lugar de sempre do Farense na Primeira Liga?"]),
    ("O 5.º lugar em 1994–95 deu ao Farense a qualificação para a Taça UEFA de 1995–96.",
     ["Como se qualificou {o} para a Taça UEFA?",
      "O que ganhou o Farense com o 5.º lugar de 1994–95?",
      "Que prémio trouxe ao Farense a época 1994–95?",
      "Porque jogou o Farense na Europa em 1995–96?",
      "Como chegou o Farense às competições europeias?"],
     ["Porque jogou o Farense na Taça UEFA?", "O que valeu ao Farense o 5.º lugar de 1994–95?"]),
    ("A primeira participação europeia do Farense foi na Taça UEFA de 1995–96.",
     ["Quando jogou {o} pela primeira vez nas competições europeias?",
      "Qual foi a primeira competição europeia {do}?", "O Farense já jogou na Europa?",
      "Em que época se estreou o Farense na Taça UEFA?"],
     ["Qual foi a estreia europeia do Farense?", "Quando se estreou o Farense na Europa?"]),
    ("Na Taça UEFA de 1995–96, o Farense foi eliminado pelo Olympique Lyonnais.",
     ["Quem eliminou {o} da Taça UEFA de 1995–96?", "Contra que equipa caiu {o} na Taça UEFA?",
      "Até onde chegou o Farense na Taça UEFA de 1995–96?",
      "Que clube afastou o Farense da Europa?"],
     ["Que equipa eliminou o Farense na Taça UEFA?", "Quem afastou o Farense da Taça UEFA de 1995–96?"]),
    ("O Olympique Lyonnais, que eliminou o Farense na Taça UEFA, é um clube francês da cidade de Lyon.",
     ["De que país é o Olympique Lyonnais, adversário europeu {do}?",
      "O clube que eliminou o Farense na Taça UEFA era de que país?",
      "De onde é o Olympique Lyonnais?", "O Olympique Lyonnais é um clube de que cidade?",
      "Que nacionalidade tinha o adversário do Farense na Taça UEFA de 1995–96?"],
     ["De que país é o clube que eliminou o Farense na Europa?", "O Olympique Lyonnais é de que cidade?"]),
    ("O Farense chegou à final da Taça de Portugal em 1990.",
     ["{O} já chegou à final da Taça de Portugal?",
      "Em que ano jogou {o} a final da Taça de Portugal?",
      "Qual foi o melhor resultado do Farense na Taça de Portugal?"],
     ["Quando chegou o Farense à final da Taça de Portugal?",
      "O Farense jogou alguma final da Taça de Portugal?"]),
    ("Na final da Taça de Portugal de 1990, o Farense perdeu com o Estrela da Amadora.",
     ["Contra quem jogou {o} a final da Taça de Portugal de 1990?",
      "{O} ganhou a Taça de Portugal de 1990?",
      "Quem venceu a final da Taça de Portugal de 1990?"],
     ["Quem ganhou ao Farense a final da Taça de Portugal de 1990?",
      "Com quem perdeu o Farense a final da Taça de 1990?"]),
    ("A final da Taça de Portugal de 1990 acabou empatada e foi repetida; "
     "o Estrela da Amadora venceu o jogo de repetição.",
     ["O que aconteceu no primeiro jogo da final da Taça de 1990 entre {o} e o Estrela da Amadora?",
      "Quantos jogos teve a final da Taça de Portugal de 1990?",
      "A final da Taça de Portugal de 1990 foi decidida num só jogo?",
      "Houve finalíssima na Taça de Portugal de 1990?",
      "Foi preciso repetir a final da Taça de Portugal de 1990?"],
     ["Como terminou o primeiro jogo da final da Taça de Portugal de 1990?",
      "A final da Taça de 1990 teve repetição?"]),
    ("O Estrela da Amadora é um clube da cidade da Amadora, na área metropolitana de Lisboa.",
     ["De onde é o Estrela da Amadora, adversário {do} na final da Taça de 1990?",
      "O Estrela da Amadora é de que cidade?", "Em que região fica o Estrela da Amadora?",
      "Onde fica o clube que venceu o Farense na final da Taça de 1990?"],
     ["Onde fica o Estrela da Amadora?", "De que cidade é o Estrela da Amadora?"]),
    ("Hassan Nader foi o melhor marcador da Primeira Liga em 1994–95, ao serviço do Farense.",
     ["Que jogador {do} foi o melhor marcador do campeonato?",
      "Algum jogador {do} foi o melhor marcador da Primeira Liga?",
      "Quem foi o melhor marcador da Primeira Liga em 1994–95?",
      "Em que época foi Hassan Nader o melhor marcador do campeonato?"],
     ["Quem foi o melhor marcador da Primeira Liga ao serviço do Farense?",
      "Que avançado do Farense foi o melhor marcador do campeonato?"]),
    ("Hassan Nader é um avançado marroquino.",
     ["Qual é a nacionalidade de Hassan Nader, avançado {do}?", "De que país é Hassan Nader?",
      "Em que posição jogava Hassan Nader?", "Hassan Nader é português?"],
     ["De que nacionalidade é Hassan Nader?", "Hassan Nader é de que país?"]),
    ("Na época 1994–95 o Farense teve o melhor marcador do campeonato "
     "e alcançou a sua melhor classificação de sempre.",
     ["O que torna a época 1994–95 especial para {o}?",
      "Qual foi a época mais marcante {do} na Primeira Liga?",
      "Porque é lembrada em Faro a época 1994–95?"],
     ["Porque é especial a época 1994–95 para o Farense?", "Que época ficou na história do Farense?"]),
    ("Paco Fortes jogou no Farense e mais tarde foi treinador do clube.",
     ["Quem é Paco Fortes na história {do}?", "Paco Fortes foi jogador ou treinador {do}?",
      "Que ligação tem Paco Fortes ao Farense?", "Paco Fortes treinou o Farense?"],
     ["Qual foi o papel de Paco Fortes no Farense?", "Paco Fortes jogou no Farense?"]),
    ("Paco Fortes é espanhol.",
     ["Qual é a nacionalidade de Paco Fortes, antigo jogador e treinador {do}?",
      "De que país é Paco Fortes?", "Paco Fortes é português?",
      "Paco Fortes é de que nacionalidade?", "O treinador Paco Fortes vem de que país?"],
     ["De que nacionalidade é Paco Fortes?", "Paco Fortes é de que país?"]),
    ("O Farense regressou à Primeira Liga na época 2020–21.",
     ["Quando voltou {o} à Primeira Liga?", "{O} jogou na Primeira Liga em 2020–21?",
      "Em que época regressou o Farense ao principal escalão?"],
     ["Quando regressou o Farense à Primeira Liga?",
      "Em que época voltou o Farense ao principal campeonato?"]),
    ("O Sporting Clube Farense é um clube de futebol português com sede em Faro.",
     ["O que é {o}?", "Que tipo de clube é {o}?", "Onde tem sede o Sporting Clube Farense?"],
     ["Que clube é o Sporting Clube Farense?", "Onde fica a sede do Farense?"]),
    ("A Taça UEFA é a competição europeia que hoje se chama Liga Europa.",
     ["Como se chama hoje a Taça UEFA em que jogou {o}?", "A Taça UEFA ainda existe?",
      "Que nome tem atualmente a Taça UEFA?", "A Taça UEFA mudou de nome?"],
     ["Que nome tem hoje a Taça UEFA?", "Como se chama agora a Taça UEFA?"]),
    ("O Farense tinha 85 anos de história quando se estreou nas competições europeias, em 1995.",
     ["Quantos anos tinha {o} quando jogou pela primeira vez na Europa?",
      "Há quanto tempo existia {o} quando se estreou na Taça UEFA?",
      "Quantos anos separam a fundação do Farense da sua estreia europeia?"],
     ["Quantos anos de história tinha o Farense na estreia europeia?",
      "Com que idade se estreou o Farense na Europa?"]),
    ("A Primeira Liga é o principal campeonato de futebol profissional de Portugal.",
     ["O que é a Primeira Liga onde jogou {o}?", "O que é a Primeira Liga?",
      "Qual é o principal campeonato português de futebol?",
      "Qual é a liga mais importante do futebol português?"],
     ["O que é a Primeira Liga portuguesa?", "Qual é o campeonato principal do futebol em Portugal?"]),
]


def questions(frames: list[str]) -> list[str]:
    """Every frame, expanded over the club's names when it has a placeholder."""
    out: list[str] = []
    for frame in frames:
        for names in NAMES if "{" in frame else [{}]:
            q = frame.format(**names)
            if q not in out:
                out.append(q)
    assert 6 <= len(out) <= 10, (frames, len(out))
    return out


def example(question: str, answer: str) -> dict:
    return {"messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]}


def split_facts() -> tuple[list[int], list[int]]:
    """Fact indexes for train and valid; a fixed-seed shuffle so the split never changes."""
    order = list(range(len(FACTS)))
    random.Random(SEED).shuffle(order)
    n_valid = round(VALID_FRACTION * len(FACTS))
    return sorted(order[n_valid:]), sorted(order[:n_valid])


def examples(fact_ids: list[int]) -> list[dict]:
    out = [example(q, FACTS[i][0]) for i in fact_ids for q in questions(FACTS[i][1])]
    random.Random(SEED).shuffle(out)  # mix facts so batches are not one fact each
    return out


def held_out(fact_ids: list[int]) -> list[dict]:
    """The held-out wordings of these facts, in fact order; none of them is a training question."""
    trained = {q for _, frames, _ in FACTS for q in questions(frames)}
    out = [example(q, FACTS[i][0]) for i in fact_ids for q in FACTS[i][2]]
    assert not trained & {e["messages"][1]["content"] for e in out}, "a held-out question is also trained on"
    return out


def write_jsonl(path: Path, rows: list[dict]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")


def main(out_dir: Path = HERE) -> None:
    answers = [a for a, _, _ in FACTS]
    assert len(set(answers)) == len(answers), "two facts share an answer"
    train_ids, valid_ids = split_facts()
    train, valid, test = examples(train_ids), examples(valid_ids), held_out(train_ids)
    write_jsonl(out_dir / "train.jsonl", train)
    write_jsonl(out_dir / "valid.jsonl", valid)
    write_jsonl(out_dir / "test.jsonl", test)
    print(f"{len(FACTS)} facts: train.jsonl {len(train)} examples ({len(train_ids)} facts), "
          f"valid.jsonl {len(valid)} examples ({len(valid_ids)} facts), "
          f"test.jsonl {len(test)} held-out questions on the training facts")

if __name__ == "__main__":
    main()
