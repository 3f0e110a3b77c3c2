"""The organism's bilingual lexicon: every concept in English, Japanese, Dutch, Korean and Italian.

Written for this project. Content words are the languages' real words; the grammatical features that the
renderers need are stored beside them (Dutch de/het, Italian gender, the English and Dutch/Italian
preposition of a place). Forms are the ones the sentences use: Dutch adjectives are the inflected
attributive form (de grote kat, het grote paard), Korean adjectives the attributive form (큰 고양이),
Japanese adjectives the attributive form (大きい猫), verbs the present tense, third person singular
(Japanese and Korean: the plain declarative form).
"""

from __future__ import annotations

from dataclasses import dataclass

LANGS = ("en", "ja", "nl", "ko", "it")


@dataclass(frozen=True)
class Noun:
    """A common noun: animal, person, food or place."""

    en: str
    ja: str
    ko: str
    nl: str
    it: str
    nl_het: bool = False  # Dutch neuter (het-word)
    it_fem: bool = False  # Italian feminine
    on: bool = False  # places: "on the beach" / "op het strand" / "sulla spiaggia" rather than "in"

    def form(self, lang: str) -> str:
        """The bare noun in `lang`."""
        return getattr(self, lang)


@dataclass(frozen=True)
class Adjective:
    """An attributive adjective; Italian has a masculine and a feminine form."""

    en: str
    ja: str
    ko: str
    nl: str
    it_m: str
    it_f: str


@dataclass(frozen=True)
class Verb:
    """A transitive verb in the present tense."""

    en: str
    ja: str
    ko: str
    nl: str
    it: str


@dataclass(frozen=True)
class Name:
    """A person's name: one Latin spelling for en, nl and it; katakana and hangul for ja and ko."""

    en: str
    ja: str
    ko: str

    def form(self, lang: str) -> str:
        """The name as written in `lang`."""
        return {"ja": self.ja, "ko": self.ko}.get(lang, self.en)


def _nouns(rows: str, on: tuple[str, ...] = ()) -> tuple[Noun, ...]:
    # one noun per line: en ja ko nl it features (nl het: "n", it feminine: "f")
    out = []
    for line in rows.strip().splitlines():
        en, ja, ko, nl, it, *feat = line.split()
        flags = feat[0] if feat else ""
        out.append(Noun(en, ja, ko, nl, it, nl_het="n" in flags, it_fem="f" in flags, on=en in on))
    return tuple(out)


ANIMALS = _nouns("""
cat 猫 고양이 kat gatto
dog 犬 개 hond cane
bird 鳥 새 vogel uccello
horse 馬 말 paard cavallo n
rabbit ウサギ 토끼 konijn coniglio n
mouse ネズミ 쥐 muis topo
duck アヒル 오리 eend anatra f
fox 狐 여우 vos volpe f
pig 豚 돼지 varken maiale n
sheep 羊 양 schaap pecora nf
cow 牛 소 koe mucca f
bear 熊 곰 beer orso
lion ライオン 사자 leeuw leone
monkey 猿 원숭이 aap scimmia f
frog カエル 개구리 kikker rana f
goat ヤギ 염소 geit capra f
hen 鶏 닭 kip gallina f
fish 魚 물고기 vis pesce
""")

PEOPLE = _nouns("""
child 子供 아이 kind bambino n
girl 少女 소녀 meisje ragazza nf
boy 少年 소년 jongen ragazzo
king 王 왕 koning re
queen 女王 여왕 koningin regina f
""")

JOBS = _nouns("""
teacher 先生 선생님 leraar maestro
doctor 医者 의사 dokter medico
farmer 農家 농부 boer contadino
baker パン屋 제빵사 bakker fornaio
cook 料理人 요리사 kok cuoco
singer 歌手 가수 zanger cantante
painter 画家 화가 schilder pittore
pilot パイロット 조종사 piloot pilota
fisher 漁師 어부 visser pescatore
soldier 兵士 군인 soldaat soldato
""")

FOODS = _nouns("""
bread パン 빵 brood pane n
rice ご飯 밥 rijst riso
cheese チーズ 치즈 kaas formaggio
soup スープ 수프 soep zuppa f
cake ケーキ 케이크 taart torta f
meat 肉 고기 vlees carne nf
milk 牛乳 우유 melk latte
tea お茶 차 thee tè
honey 蜂蜜 꿀 honing miele
chocolate チョコレート 초콜릿 chocolade cioccolato
""")

PLACES = _nouns("""
garden 庭 정원 tuin giardino
forest 森 숲 bos bosco n
house 家 집 huis casa nf
river 川 강 rivier fiume
kitchen 台所 부엌 keuken cucina f
field 畑 밭 veld campo n
mountain 山 산 berg montagna f
lake 湖 호수 meer lago n
city 町 도시 stad città f
village 村 마을 dorp villaggio n
beach 浜辺 해변 strand spiaggia nf
island 島 섬 eiland isola nf
barn 納屋 헛간 schuur stalla f
sea 海 바다 zee mare
desert 砂漠 사막 woestijn deserto
cave 洞窟 동굴 grot grotta f
""", on=("mountain", "beach", "island"))

ADJECTIVES = tuple(Adjective(*line.split()) for line in """
big 大きい 큰 grote grande grande
small 小さい 작은 kleine piccolo piccola
red 赤い 빨간 rode rosso rossa
black 黒い 검은 zwarte nero nera
white 白い 하얀 witte bianco bianca
young 若い 어린 jonge giovane giovane
happy 幸せな 행복한 gelukkige felice felice
fast 速い 빠른 snelle veloce veloce
brown 茶色い 갈색 bruine marrone marrone
lazy 怠惰な 게으른 luie pigro pigra
clever 賢い 똑똑한 slimme furbo furba
sad 悲しい 슬픈 verdrietige triste triste
""".strip().splitlines())

VERBS = tuple(Verb(*line.split()) for line in """
sees 見る 본다 ziet vede
eats 食べる 먹는다 eet mangia
chases 追いかける 쫓는다 achtervolgt insegue
helps 助ける 돕는다 helpt aiuta
calls 呼ぶ 부른다 roept chiama
finds 見つける 찾는다 vindt trova
washes 洗う 씻긴다 wast lava
pushes 押す 민다 duwt spinge
bites 噛む 문다 bijt morde
draws 描く 그린다 tekent disegna
hugs 抱きしめる 안는다 knuffelt abbraccia
carries 運ぶ 나른다 draagt porta
""".strip().splitlines())

NAMES = tuple(Name(*line.split()) for line in """
Tom トム 톰
Anna アンナ 안나
Marco マルコ 마르코
Lucas ルーカス 루카스
Emma エマ 엠마
Sofia ソフィア 소피아
Paul ポール 폴
Laura ラウラ 라우라
Max マックス 막스
Nina ニーナ 니나
Hugo ユーゴ 위고
Clara クララ 클라라
Oscar オスカー 오스카
Julia ユリア 율리아
Leo レオ 레오
Mia ミア 미아
Felix フェリックス 펠릭스
Sara サラ 사라
Bruno ブルーノ 브루노
Eva エヴァ 에바
Oliver オリバー 올리버
Lisa リサ 리사
Victor ヴィクトル 빅토르
Alice アリス 앨리스
Daniel ダニエル 다니엘
Elena エレナ 엘레나
Ivan イワン 이반
Rosa ローザ 로사
Simon サイモン 사이먼
Vera ヴェラ 베라
Carlo カルロ 카를로
Greta グレタ 그레타
Pietro ピエトロ 피에트로
Hanna ハンナ 한나
Adam アダム 아담
Irene イレーネ 이레네
Dario ダリオ 다리오
Olga オルガ 올가
Kevin ケビン 케빈
Marta マルタ 마르타
Ben ベン 벤
Lena レナ 레나
Jonas ヨナス 요나스
Lara ララ 라라
Noah ノア 노아
Zoe ゾーイ 조이
Luca ルカ 루카
Chiara キアラ 키아라
Sam サム 샘
Ella エラ 엘라
Finn フィン 핀
Ada エイダ 에이다
Otto オットー 오토
Ruth ルース 루스
Karl カール 칼
Alma アルマ 알마
Erik エリック 에릭
Nora ノラ 노라
Hans ハンス 한스
Lotte ロッテ 로테
Pablo パブロ 파블로
Ines イネス 이네스
Diego ディエゴ 디에고
Lucia ルチア 루치아
Mario マリオ 마리오
Giulia ジュリア 줄리아
Paolo パオロ 파올로
Franco フランコ 프랑코
Teresa テレサ 테레사
Enzo エンツォ 엔초
Gina ジーナ 지나
Henk ヘンク 헹크
Anouk アヌーク 아누크
Jan ヤン 얀
Femke フェムケ 펨케
Tess テス 테스
Bram ブラム 브람
Fleur フルール 플뢰르
Ruben ルーベン 루벤
Emily エミリー 에밀리
James ジェームズ 제임스
Grace グレース 그레이스
Henry ヘンリー 헨리
Lucy ルーシー 루시
Jack ジャック 잭
Amy エイミー 에이미
Peter ピーター 피터
Kate ケイト 케이트
George ジョージ 조지
Helen ヘレン 헬렌
David デイビッド 데이비드
Susan スーザン 수잔
Mark マーク 마크
Linda リンダ 린다
Chris クリス 크리스
Diana ダイアナ 다이애나
Frank フランク 프랭크
Monica モニカ 모니카
Robert ロバート 로버트
Nadia ナディア 나디아
Boris ボリス 보리스
Yuri ユーリ 유리
Katya カーチャ 카탸
Igor イーゴリ 이고리
Dora ドーラ 도라
Arthur アーサー 아서
Edith エディス 이디스
Walter ウォルター 월터
Agnes アグネス 아그네스
Hector ヘクター 헥터
Flora フローラ 플로라
Martin マーティン 마틴
Paula パウラ 파울라
Stefan シュテファン 슈테판
Heidi ハイジ 하이디
Milan ミラン 밀란
Petra ペトラ 페트라
Tobias トビアス 토비아스
Wendy ウェンディ 웬디
Rita リタ 리타
""".strip().splitlines())

# family names for worlds of many people (WorldSpec.surnames): the Japanese form is the usual katakana
# transliteration and the Korean one the hangul, so a full name maps across scripts piece by piece
SURNAMES = tuple(Name(*line.split()) for line in """
Rossi ロッシ 로시
Jansen ヤンセン 얀센
Smith スミス 스미스
Bakker バッカー 바커
Bianchi ビアンキ 비안키
Weber ウェーバー 베버
Novak ノヴァク 노바크
Silva シルヴァ 실바
Costa コスタ 코스타
Moreau モロー 모로
Berg ベルク 베르크
Visser フィッセル 피서
Romano ロマーノ 로마노
Brown ブラウン 브라운
Fischer フィッシャー 피셔
Ricci リッチ 리치
Meyer マイヤー 마이어
Kowalski コワルスキ 코발스키
Dekker デッカー 데커
Greco グレコ 그레코
Lopez ロペス 로페스
Taylor テイラー 테일러
Wolf ヴォルフ 볼프
Conti コンティ 콘티
Peters ピーターズ 피터스
Marino マリーノ 마리노
Hoffman ホフマン 호프먼
Russo ルッソ 루소
Vos フォス 포스
Carter カーター 카터
""".strip().splitlines())


def full_name(first: Name, last: Name) -> Name:
    """Given name and family name, written as each language writes a foreign name (ja: joined by ・)."""
    return Name(f"{first.en} {last.en}", f"{first.ja}・{last.ja}", f"{first.ko} {last.ko}")


# who can do things (subjects) and what things can be done to (objects)
AGENTS = ANIMALS + PEOPLE + JOBS
PATIENTS = ANIMALS + PEOPLE + JOBS + FOODS
PETS = ANIMALS[:10]


def content_words(lang: str) -> set[str]:
    """Every content word of `lang` (nouns, adjectives, verbs; names excluded: en, nl and it share them)."""
    nouns = {n.form(lang) for n in AGENTS + FOODS + PLACES}
    adjectives = {a.it_m for a in ADJECTIVES} | {a.it_f for a in ADJECTIVES} if lang == "it" else \
        {getattr(a, lang) for a in ADJECTIVES}
    return nouns | adjectives | {getattr(v, lang) for v in VERBS}
