// The closed set of facts behind the embedded demo corpus (about 190), each in English and Chinese: capitals of
// invented countries, animals (food, sounds, legs), colours, a small family with pets, additions and
// subtractions, and a few everyday facts. Every fact carries
//   statements  sentences for the pretraining text
//   questions   the phrasings used in SFT and DPO
//   heldout     other phrasings, never used in training, for evaluation
//   answer      the short templated answer (the SFT reply)
//   wrong       a plausible wrong answer (a DPO rejected reply)
//   keywords    what a correct reply must contain
// The facts are fixed (no seed): the seed of writeDemoData only changes which sentences are sampled.
import { Rng } from '../util/random';

export type Language = 'en' | 'zh';
export type Topic = 'capital' | 'animal' | 'color' | 'family' | 'arithmetic' | 'everyday';

export interface FactText {
  statements: string[];
  questions: string[];
  heldout: string[];
  answer: string;
  wrong: string;
  keywords: string[];
}

export interface Fact {
  id: string;
  topic: Topic;
  en: FactText;
  zh: FactText;
}

const capitalize = (s: string) => s[0].toUpperCase() + s.slice(1);

// ---- capitals of invented countries -----------------------------------------------------------------------------

/** Syllables with a Chinese transliteration, so invented names exist in both languages. */
const SYLLABLES: [string, string][] = [
  ['ka', '卡'], ['mi', '米'], ['lo', '洛'], ['ra', '拉'], ['ta', '塔'], ['no', '诺'], ['su', '苏'], ['be', '贝'],
  ['do', '多'], ['fi', '菲'], ['ge', '格'], ['ha', '哈'], ['ki', '基'], ['lu', '鲁'], ['ma', '玛'], ['ne', '内'],
  ['pa', '帕'], ['ri', '里'], ['so', '索'], ['ti', '蒂'], ['va', '瓦'], ['ze', '泽'], ['bo', '波'], ['da', '达'],
  ['mo', '莫'], ['na', '纳'], ['to', '托'], ['sa', '萨'], ['le', '勒'], ['vi', '维'],
];
const COUNTRY_ENDINGS: [string, string][] = [['ria', '利亚'], ['land', '兰'], ['stan', '斯坦'], ['nia', '尼亚']];

/** 50 invented country/capital pairs, generated once from a fixed seed. */
function inventedCountries(count: number): { country: [string, string]; capital: [string, string] }[] {
  const rng = new Rng(20241015);
  const used = new Set<string>();
  const name = (parts: [string, string][]): [string, string] =>
    [capitalize(parts.map((p) => p[0]).join('')), parts.map((p) => p[1]).join('')];
  const fresh = (make: () => [string, string]): [string, string] => {
    for (;;) {
      const n = make();
      if (!used.has(n[0]) && !used.has(n[1])) {
        used.add(n[0]);
        used.add(n[1]);
        return n;
      }
    }
  };
  const countries = Array.from({ length: count },
    () => fresh(() => name([rng.pick(SYLLABLES), rng.pick(SYLLABLES), rng.pick(COUNTRY_ENDINGS)])));
  // A capital must not be the start of a country's name, or echoing the question would look like an answer
  // (returning an already used name makes fresh() draw again).
  const capitals = Array.from({ length: count }, () => fresh(() => {
    const n = name([rng.pick(SYLLABLES), rng.pick(SYLLABLES)]);
    return countries.some((c) => c[1].startsWith(n[1])) ? countries[0] : n;
  }));
  const pairs = countries.map((country, i) => ({ country, capital: capitals[i] }));
  return pairs;
}

function capitalFacts(): Fact[] {
  const countries = inventedCountries(50);
  return countries.map(({ country: [C, Cz], capital: [K, Kz] }, i) => {
    const [W, Wz] = countries[(i + 1) % countries.length].capital;
    return {
      id: `capital-${C.toLowerCase()}`,
      topic: 'capital',
      en: {
        statements: [`The capital of ${C} is ${K}.`, `${K} is the capital city of ${C}.`,
          `${C} is a country. Its capital is ${K}.`],
        questions: [`What is the capital of ${C}?`, `Tell me the capital of ${C}.`],
        heldout: [`Which city is the capital of ${C}?`, `Do you know what the capital of ${C} is?`],
        answer: `The capital of ${C} is ${K}.`,
        wrong: `The capital of ${C} is ${W}.`,
        keywords: [K],
      },
      zh: {
        statements: [`${Cz}的首都是${Kz}。`, `${Kz}是${Cz}的首都。`, `${Cz}是一个国家，它的首都是${Kz}。`],
        questions: [`${Cz}的首都是哪里？`, `${Cz}的首都是什么？`],
        heldout: [`哪座城市是${Cz}的首都？`, `你知道${Cz}的首都吗？`],
        answer: `${Cz}的首都是${Kz}。`,
        wrong: `${Cz}的首都是${Wz}。`,
        keywords: [Kz],
      },
    };
  });
}

// ---- animals ----------------------------------------------------------------------------------------------------

const ANIMAL_FOODS: [string, string, string, string][] = [
  ['panda', '大熊猫', 'bamboo', '竹子'], ['rabbit', '兔子', 'carrots', '胡萝卜'], ['cat', '猫', 'fish', '鱼'],
  ['dog', '狗', 'bones', '骨头'], ['monkey', '猴子', 'bananas', '香蕉'], ['cow', '牛', 'grass', '草'],
  ['bear', '熊', 'honey', '蜂蜜'], ['squirrel', '松鼠', 'nuts', '坚果'], ['koala', '考拉', 'eucalyptus leaves', '桉树叶'],
  ['chicken', '鸡', 'corn', '玉米'],
];
const ANIMAL_SOUNDS: [string, string, string, string][] = [
  ['dog', '狗', 'woof', '汪汪'], ['cat', '猫', 'meow', '喵喵'], ['cow', '牛', 'moo', '哞哞'],
  ['duck', '鸭子', 'quack', '嘎嘎'], ['sheep', '羊', 'baa', '咩咩'], ['frog', '青蛙', 'ribbit', '呱呱'],
];
const ANIMAL_LEGS: [string, string, number][] = [
  ['spider', '蜘蛛', 8], ['ant', '蚂蚁', 6], ['horse', '马', 4], ['chicken', '鸡', 2], ['cat', '猫', 4], ['bee', '蜜蜂', 6],
];

export const article = (noun: string) => (/^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`);

function animalFacts(): Fact[] {
  const foods = ANIMAL_FOODS.map(([a, az, f, fz], i): Fact => {
    const [, , w, wz] = ANIMAL_FOODS[(i + 3) % ANIMAL_FOODS.length];
    return {
      id: `food-${a}`, topic: 'animal',
      en: {
        statements: [`${capitalize(article(a))} eats ${f}.`, `The favorite food of ${article(a)} is ${f}.`,
          `${capitalize(f)} is what ${article(a)} likes to eat.`],
        questions: [`What does ${article(a)} eat?`, `What food does ${article(a)} like?`],
        heldout: [`What is the favorite food of ${article(a)}?`, `Tell me what ${article(a)} likes to eat.`],
        answer: `${capitalize(article(a))} eats ${f}.`, wrong: `${capitalize(article(a))} eats ${w}.`, keywords: [f],
      },
      zh: {
        statements: [`${az}吃${fz}。`, `${az}最喜欢吃${fz}。`, `${fz}是${az}爱吃的食物。`],
        questions: [`${az}吃什么？`, `${az}喜欢吃什么？`],
        heldout: [`${az}最爱吃的食物是什么？`, `你知道${az}平时吃什么吗？`],
        answer: `${az}吃${fz}。`, wrong: `${az}吃${wz}。`, keywords: [fz],
      },
    };
  });
  const sounds = ANIMAL_SOUNDS.map(([a, az, s, sz], i): Fact => {
    const [, , w, wz] = ANIMAL_SOUNDS[(i + 1) % ANIMAL_SOUNDS.length];
    return {
      id: `sound-${a}`, topic: 'animal',
      en: {
        statements: [`${capitalize(article(a))} says ${s}.`, `When ${article(a)} talks, it says ${s}.`],
        questions: [`What does ${article(a)} say?`, `What sound does ${article(a)} make?`],
        heldout: [`How does ${article(a)} sound?`, `Which sound comes from ${article(a)}?`],
        answer: `${capitalize(article(a))} says ${s}.`, wrong: `${capitalize(article(a))} says ${w}.`, keywords: [s],
      },
      zh: {
        statements: [`${az}会${sz}叫。`, `${az}的叫声是${sz}。`],
        questions: [`${az}怎么叫？`, `${az}的叫声是什么？`],
        heldout: [`${az}会发出什么声音？`, `你知道${az}是怎么叫的吗？`],
        answer: `${az}会${sz}叫。`, wrong: `${az}会${wz}叫。`, keywords: [sz],
      },
    };
  });
  const legs = ANIMAL_LEGS.map(([a, az, n], i): Fact => {
    const w = ANIMAL_LEGS[(i + 1) % ANIMAL_LEGS.length][2] === n ? n + 2 : ANIMAL_LEGS[(i + 1) % ANIMAL_LEGS.length][2];
    return {
      id: `legs-${a}`, topic: 'animal',
      en: {
        statements: [`${capitalize(article(a))} has ${n} legs.`, `Count the legs of ${article(a)}: there are ${n}.`],
        questions: [`How many legs does ${article(a)} have?`, `How many legs has ${article(a)} got?`],
        heldout: [`What is the number of legs of ${article(a)}?`, `Count the legs of ${article(a)} for me.`],
        answer: `${capitalize(article(a))} has ${n} legs.`, wrong: `${capitalize(article(a))} has ${w} legs.`,
        keywords: [String(n)],
      },
      zh: {
        statements: [`${az}有${n}条腿。`, `数一数${az}的腿，一共有${n}条。`],
        questions: [`${az}有几条腿？`, `${az}有多少条腿？`],
        heldout: [`${az}的腿一共有几条？`, `请数一数${az}有几条腿。`],
        answer: `${az}有${n}条腿。`, wrong: `${az}有${w}条腿。`, keywords: [String(n)],
      },
    };
  });
  return [...foods, ...sounds, ...legs];
}

// ---- colours ------------------------------------------------------------------------------------------------------

/** [English subject, Chinese subject, colour, Chinese colour] */
const COLORS: [string, string, string, string][] = [
  ['the sky', '天空', 'blue', '蓝'], ['grass', '草', 'green', '绿'], ['snow', '雪', 'white', '白'],
  ['a banana', '香蕉', 'yellow', '黄'], ['an apple', '苹果', 'red', '红'], ['coal', '煤', 'black', '黑'],
  ['a carrot', '胡萝卜', 'orange', '橙'], ['a strawberry', '草莓', 'red', '红'], ['a lemon', '柠檬', 'yellow', '黄'],
  ['milk', '牛奶', 'white', '白'], ['a tomato', '西红柿', 'red', '红'], ['a grape', '葡萄', 'purple', '紫'],
  ['a leaf', '树叶', 'green', '绿'], ['chocolate', '巧克力', 'brown', '棕'], ['a cloud', '云', 'white', '白'],
  ['the sea', '大海', 'blue', '蓝'], ['a pumpkin', '南瓜', 'orange', '橙'], ['an eggplant', '茄子', 'purple', '紫'],
  ['a crow', '乌鸦', 'black', '黑'], ['a lime', '青柠', 'green', '绿'],
];

function colorFacts(): Fact[] {
  return COLORS.map(([s, sz, c, cz], i): Fact => {
    let j = (i + 1) % COLORS.length;
    while (COLORS[j][2] === c) j = (j + 1) % COLORS.length;
    const [, , w, wz] = COLORS[j];
    return {
      id: `color-${s.replace(/^(the|a|an) /, '')}`, topic: 'color',
      en: {
        statements: [`${capitalize(s)} is ${c}.`, `The color of ${s} is ${c}.`, `Look at ${s}: it is ${c}.`],
        questions: [`What color is ${s}?`, `What is the color of ${s}?`],
        heldout: [`Which color does ${s} have?`, `Tell me the color of ${s}.`],
        answer: `${capitalize(s)} is ${c}.`, wrong: `${capitalize(s)} is ${w}.`, keywords: [c],
      },
      zh: {
        statements: [`${sz}是${cz}色的。`, `${sz}的颜色是${cz}色。`, `看，${sz}是${cz}色的。`],
        questions: [`${sz}是什么颜色的？`, `${sz}的颜色是什么？`],
        heldout: [`${sz}是哪种颜色？`, `你知道${sz}是什么颜色吗？`],
        answer: `${sz}是${cz}色的。`, wrong: `${sz}是${wz}色的。`, keywords: [`${cz}色`],
      },
    };
  });
}

// ---- a family with pets (the characters of the stories) -------------------------------------------------------

export interface Person {
  en: string;
  zh: string;
}
export const PEOPLE = {
  jack: { en: 'Jack', zh: '杰克' }, rose: { en: 'Rose', zh: '罗丝' },
  sam: { en: 'Sam', zh: '山姆' }, emma: { en: 'Emma', zh: '艾玛' },
  lucy: { en: 'Lucy', zh: '露西' }, leo: { en: 'Leo', zh: '利奥' },
  tom: { en: 'Tom', zh: '汤姆' }, lily: { en: 'Lily', zh: '莉莉' },
  ben: { en: 'Ben', zh: '本' }, mia: { en: 'Mia', zh: '米娅' },
} satisfies Record<string, Person>;

/** The four children of the stories: Jack and Rose have Sam and Lucy; Sam and Emma have Tom and (younger) Lily;
 * Lucy and Leo have Mia and (younger) Ben. Chinese distinguishes paternal and maternal grandparents and older and
 * younger siblings. */
export interface Child {
  kid: Person;
  sibling: Person;
  siblingWord: [string, string];
  mother: Person;
  father: Person;
  grandparentWords: [string, string];
  pet: { kind: [string, string]; name: Person };
}
export const CHILDREN: Child[] = [
  { kid: PEOPLE.tom, sibling: PEOPLE.lily, siblingWord: ['sister', '妹妹'], mother: PEOPLE.emma, father: PEOPLE.sam,
    grandparentWords: ['奶奶', '爷爷'], pet: { kind: ['dog', '狗'], name: { en: 'Max', zh: '麦克斯' } } },
  { kid: PEOPLE.lily, sibling: PEOPLE.tom, siblingWord: ['brother', '哥哥'], mother: PEOPLE.emma, father: PEOPLE.sam,
    grandparentWords: ['奶奶', '爷爷'], pet: { kind: ['cat', '猫'], name: { en: 'Luna', zh: '露娜' } } },
  { kid: PEOPLE.mia, sibling: PEOPLE.ben, siblingWord: ['brother', '弟弟'], mother: PEOPLE.lucy, father: PEOPLE.leo,
    grandparentWords: ['外婆', '外公'], pet: { kind: ['bird', '鸟'], name: { en: 'Kiki', zh: '琪琪' } } },
  { kid: PEOPLE.ben, sibling: PEOPLE.mia, siblingWord: ['sister', '姐姐'], mother: PEOPLE.lucy, father: PEOPLE.leo,
    grandparentWords: ['外婆', '外公'], pet: { kind: ['rabbit', '兔子'], name: { en: 'Coco', zh: '可可' } } },
];

/** [person, relation (en, zh), relative] */
const RELATIONS: [Person, string, string, Person][] = [
  ...CHILDREN.flatMap((c): [Person, string, string, Person][] => [
    [c.kid, 'mother', '妈妈', c.mother], [c.kid, 'father', '爸爸', c.father],
    [c.kid, 'grandmother', c.grandparentWords[0], PEOPLE.rose], [c.kid, 'grandfather', c.grandparentWords[1], PEOPLE.jack],
    [c.kid, c.siblingWord[0], c.siblingWord[1], c.sibling],
  ]),
  [PEOPLE.sam, 'mother', '妈妈', PEOPLE.rose], [PEOPLE.sam, 'father', '爸爸', PEOPLE.jack],
  [PEOPLE.lucy, 'mother', '妈妈', PEOPLE.rose], [PEOPLE.lucy, 'father', '爸爸', PEOPLE.jack],
  [PEOPLE.sam, 'wife', '妻子', PEOPLE.emma], [PEOPLE.emma, 'husband', '丈夫', PEOPLE.sam],
  [PEOPLE.lucy, 'husband', '丈夫', PEOPLE.leo], [PEOPLE.leo, 'wife', '妻子', PEOPLE.lucy],
];

function familyFacts(): Fact[] {
  const relations = RELATIONS.map(([who, rel, relZh, whom], i): Fact => {
    const other = RELATIONS[(i + 7) % RELATIONS.length][3];
    const w = other === whom ? PEOPLE.leo : other;
    return {
      id: `family-${who.en.toLowerCase()}-${rel}`, topic: 'family',
      en: {
        statements: [`${who.en}'s ${rel} is ${whom.en}.`, `${whom.en} is the ${rel} of ${who.en}.`],
        questions: [`Who is ${who.en}'s ${rel}?`, `What is the name of ${who.en}'s ${rel}?`],
        heldout: [`Can you tell me who ${who.en}'s ${rel} is?`, `Who is the ${rel} of ${who.en}?`],
        answer: `${who.en}'s ${rel} is ${whom.en}.`, wrong: `${who.en}'s ${rel} is ${w.en}.`, keywords: [whom.en],
      },
      zh: {
        statements: [`${who.zh}的${relZh}是${whom.zh}。`, `${whom.zh}是${who.zh}的${relZh}。`],
        questions: [`${who.zh}的${relZh}是谁？`, `${who.zh}的${relZh}叫什么名字？`],
        heldout: [`谁是${who.zh}的${relZh}？`, `你知道${who.zh}的${relZh}是谁吗？`],
        answer: `${who.zh}的${relZh}是${whom.zh}。`, wrong: `${who.zh}的${relZh}是${w.zh}。`, keywords: [whom.zh],
      },
    };
  });
  const pets = CHILDREN.map(({ kid: owner, pet: { kind: [kind, kindZh], name } }, i): Fact => {
    const w = CHILDREN[(i + 1) % CHILDREN.length].pet.name;
    return {
      id: `pet-${owner.en.toLowerCase()}`, topic: 'family',
      en: {
        statements: [`${owner.en} has a ${kind} named ${name.en}.`, `${name.en} is ${owner.en}'s ${kind}.`],
        questions: [`What is the name of ${owner.en}'s ${kind}?`, `What is ${owner.en}'s ${kind} called?`],
        heldout: [`How is ${owner.en}'s ${kind} named?`, `Tell me the name of the ${kind} that ${owner.en} has.`],
        answer: `${owner.en}'s ${kind} is called ${name.en}.`, wrong: `${owner.en}'s ${kind} is called ${w.en}.`,
        keywords: [name.en],
      },
      zh: {
        statements: [`${owner.zh}有一只${kindZh}，名字叫${name.zh}。`, `${name.zh}是${owner.zh}的${kindZh}。`],
        questions: [`${owner.zh}的${kindZh}叫什么名字？`, `${owner.zh}的${kindZh}叫什么？`],
        heldout: [`${owner.zh}养的${kindZh}名字是什么？`, `你知道${owner.zh}的${kindZh}叫什么吗？`],
        answer: `${owner.zh}的${kindZh}叫${name.zh}。`, wrong: `${owner.zh}的${kindZh}叫${w.zh}。`, keywords: [name.zh],
      },
    };
  });
  return [...relations, ...pets];
}

// ---- arithmetic ---------------------------------------------------------------------------------------------------

function arithmeticFacts(): Fact[] {
  const facts: Fact[] = [];
  const add = (a: number, b: number, op: 'plus' | 'minus') => {
    const r = op === 'plus' ? a + b : a - b;
    const opZh = op === 'plus' ? '加' : '减';
    const w = r + 1;
    facts.push({
      id: `${op}-${a}-${b}`, topic: 'arithmetic',
      en: {
        statements: [`${a} ${op} ${b} is ${r}.`, `${a} ${op} ${b} equals ${r}.`],
        questions: [`What is ${a} ${op} ${b}?`, `${a} ${op} ${b} equals what?`],
        heldout: [`How much is ${a} ${op} ${b}?`, `Please compute ${a} ${op} ${b}.`],
        answer: `${a} ${op} ${b} is ${r}.`, wrong: `${a} ${op} ${b} is ${w}.`, keywords: [String(r)],
      },
      zh: {
        statements: [`${a}${opZh}${b}等于${r}。`, `${a}${opZh}${b}的结果是${r}。`],
        questions: [`${a}${opZh}${b}等于几？`, `${a}${opZh}${b}等于多少？`],
        heldout: [`${a}${opZh}上${b}是多少？`, `请算一算${a}${opZh}${b}。`],
        answer: `${a}${opZh}${b}等于${r}。`, wrong: `${a}${opZh}${b}等于${w}。`, keywords: [String(r)],
      },
    });
  };
  for (let a = 1; a <= 9; a++) for (let b = a; b <= 9; b++) add(a, b, 'plus');
  for (const [a, b] of [[5, 2], [6, 1], [6, 3], [7, 2], [7, 4], [8, 3], [8, 5], [9, 1], [9, 4], [9, 6], [10, 3],
    [10, 5], [10, 7], [12, 4], [15, 5]]) add(a, b, 'minus');
  return facts;
}

// ---- everyday facts -----------------------------------------------------------------------------------------------

/** [id, en statement, en question, en held-out, keyword, wrong keyword, zh statement, zh question, zh held-out,
 *  zh keyword, zh wrong keyword]; the statement is also the answer, the keyword swapped gives the wrong one. */
const EVERYDAY: string[][] = [
  ['week', 'A week has 7 days.', 'How many days are in a week?', 'What is the number of days in one week?', '7', '5',
    '一个星期有7天。', '一个星期有几天？', '一周一共有多少天？', '7', '5'],
  ['year', 'A year has 12 months.', 'How many months are in a year?', 'What is the number of months in one year?',
    '12', '10', '一年有12个月。', '一年有几个月？', '一年一共有多少个月？', '12', '10'],
  ['day', 'A day has 24 hours.', 'How many hours are in a day?', 'What is the number of hours in one day?', '24',
    '12', '一天有24个小时。', '一天有几个小时？', '一天一共有多少小时？', '24', '12'],
  ['hour', 'An hour has 60 minutes.', 'How many minutes are in an hour?', 'What is the number of minutes in one hour?',
    '60', '100', '一个小时有60分钟。', '一个小时有几分钟？', '一小时一共有多少分钟？', '60', '100'],
  ['sun', 'The sun rises in the east.', 'Where does the sun rise?', 'In which direction does the sun come up?', 'east',
    'west', '太阳从东方升起。', '太阳从哪里升起？', '太阳是从哪个方向出来的？', '东', '西'],
  ['bee', 'Bees make honey.', 'What do bees make?', 'Which food is made by bees?', 'honey', 'milk',
    '蜜蜂会酿蜂蜜。', '蜜蜂会酿什么？', '蜜蜂能做出什么食物？', '蜂蜜', '牛奶'],
  ['ice', 'Water turns into ice when it is cold.', 'What does water turn into when it is cold?',
    'When it gets cold, what does water become?', 'ice', 'steam',
    '天冷的时候水会变成冰。', '天冷的时候水会变成什么？', '水遇冷以后会变成什么？', '冰', '水蒸气'],
  ['fish', 'Fish live in water.', 'Where do fish live?', 'In what place can you find fish living?', 'water', 'trees',
    '鱼生活在水里。', '鱼生活在哪里？', '鱼住在什么地方？', '水里', '树上'],
  ['stars', 'We see the stars at night.', 'When do we see the stars?', 'At what time of day can we see stars?',
    'night', 'noon', '我们在晚上看到星星。', '我们什么时候看到星星？', '一天中什么时候能看见星星？', '晚上', '中午'],
  ['moon', 'The moon goes around the earth.', 'What does the moon go around?', 'The moon circles which planet?',
    'earth', 'sun', '月亮绕着地球转。', '月亮绕着什么转？', '月亮围绕哪个星球转动？', '地球', '太阳'],
];

function everydayFacts(): Fact[] {
  return EVERYDAY.map(([id, s, q, h, k, wk, sz, qz, hz, kz, wkz]): Fact => ({
    id: `everyday-${id}`, topic: 'everyday',
    en: { statements: [s], questions: [q], heldout: [h], answer: s, wrong: s.replace(k, wk), keywords: [k] },
    zh: { statements: [sz], questions: [qz], heldout: [hz], answer: sz, wrong: sz.replace(kz, wkz), keywords: [kz] },
  }));
}

/** Every fact of the demo world, in a fixed order. */
export function demoFacts(): Fact[] {
  return [...capitalFacts(), ...animalFacts(), ...colorFacts(), ...familyFacts(), ...arithmeticFacts(),
    ...everydayFacts()];
}

export { ANIMAL_FOODS };
